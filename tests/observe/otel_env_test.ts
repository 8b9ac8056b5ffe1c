import assert from "node:assert/strict";
import {
  exportUrl,
  parseList,
  resourceFromEnv,
} from "../../lib/observe/otel_env.ts";

Deno.test("otel env: the traces endpoint wins; a base endpoint gets /v1/traces once", () => {
  assert.equal(exportUrl({}), undefined);
  assert.equal(
    exportUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318//" }),
    "http://c:4318/v1/traces",
  );
  assert.equal(
    exportUrl({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://t:4318/custom",
    }),
    "http://t:4318/custom",
  );
});

Deno.test("otel env: k=v lists are percent-decoded; service name over resource attributes", () => {
  assert.deepEqual(parseList("a=1, b = x%2Cy ,bad,=v,c=%E0%A4%A"), {
    a: "1",
    b: "x,y",
    c: "%E0%A4%A",
  });
  const r = resourceFromEnv({
    OTEL_RESOURCE_ATTRIBUTES: "service.name=from-attrs,k8s.pod.name=web-0",
    OTEL_SERVICE_NAME: "mca-east",
  });
  assert.equal(r["service.name"], "mca-east");
  assert.equal(r["k8s.pod.name"], "web-0");
  assert.equal(resourceFromEnv({})["service.name"], "mca");
});
