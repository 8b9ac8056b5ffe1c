import assert from "node:assert/strict";
import { grpcTarget } from "../../lib/observe/otlp_grpc.ts";
import { parseRequestInfo } from "../../lib/kube/request_info.ts";
import { samplerFromEnv } from "../../lib/observe/trace_context.ts";
import {
  encodeJson as encode,
  type FinishedSpan,
} from "../../lib/observe/otlp_encode.ts";
import { startTracing, tracingFromEnv } from "../../lib/observe/tracing.ts";
import type { CallObservation } from "../../lib/observe/observer.ts";

const APP_TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;

function call(traceparent?: string) {
  return {
    id: 1,
    info: parseRequestInfo("GET", "/api/v1/namespaces/default/pods/web"),
    method: "GET",
    startedAt: 0,
    receivedAt: new Date(0),
    upgrade: false,
    traceparent,
    tracestate: traceparent ? "vendor=1" : undefined,
  };
}
/** The call's one upstream request: a GET of the Pod in `east`. */
function eastGet(obs: CallObservation) {
  return obs.upstream?.({
    cluster: "east",
    method: "GET",
    target: "/api/v1/namespaces/default/pods/web",
    info: call().info,
  })!;
}

const end = {
  status: 200,
  bytesIn: 0,
  bytesOut: 1,
  durationMs: 1,
  cluster: "east",
  outcomes: [],
};

function capture(sampler = "parentbased_always_on", arg?: string) {
  const spans: FinishedSpan[] = [];
  const tracing = startTracing({
    sampler: samplerFromEnv(sampler, arg),
    exporter: {
      add: (s) => void spans.push(s),
      flush: async () => {},
      close: async () => {},
    },
  });
  return { spans, observer: tracing.observer };
}

Deno.test("tracing: off without an OTLP endpoint; bad protocol or gRPC endpoint stops the start", () => {
  assert.equal(tracingFromEnv({}, () => {}), undefined);
  assert.equal(
    tracingFromEnv(
      { OTEL_SERVICE_NAME: "x", OTEL_TRACES_SAMPLER: "always_on" },
      () => {},
    ),
    undefined,
  );
  assert.equal(
    tracingFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1",
      OTEL_TRACES_EXPORTER: "none",
    }, () => {}),
    undefined,
  );
  assert.throws(
    () =>
      tracingFromEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1",
        OTEL_EXPORTER_OTLP_PROTOCOL: "udp",
      }, () => {}),
    /not known; use grpc, http\/protobuf or http\/json/,
  );
  assert.throws(
    () =>
      tracingFromEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: "unix:///run/otel.sock",
        OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
      }, () => {}),
    /is not a gRPC endpoint: write http:\/\/host:4317/,
  );
});

Deno.test("tracing: gRPC endpoints as the OTLP spec reads them", () => {
  assert.deepEqual(grpcTarget("http://collector:4317"), {
    address: "collector:4317",
    tls: false,
  });
  assert.deepEqual(grpcTarget("https://collector:4317/ignored"), {
    address: "collector:4317",
    tls: true,
  });
  assert.deepEqual(grpcTarget("https://collector"), {
    address: "collector:443",
    tls: true,
  });
  assert.deepEqual(grpcTarget("collector:4317"), {
    address: "collector:4317",
    tls: true,
  });
  assert.deepEqual(grpcTarget("collector:4317", "true"), {
    address: "collector:4317",
    tls: false,
  });
  assert.deepEqual(grpcTarget("http://[::1]:4317"), {
    address: "[::1]:4317",
    tls: false,
  });
  assert.throws(() => grpcTarget("ftp://c:1"), /not a gRPC endpoint/);
});

Deno.test("tracing: the app's trace continues; one traceparent upstream, parent = MCA's client span", () => {
  const { spans, observer } = capture();
  const obs = observer.start(call(APP_TP));
  obs.decided?.({ plan: "one", clusters: ["east"], missing: [], rule: "r1" });
  const up = eastGet(obs);
  const tp = up.headers!.traceparent;
  assert.match(tp, TRACEPARENT);
  assert.equal(tp.split("-")[1], "0af7651916cd43dd8448eb211c80319c");
  assert.equal(up.headers!.tracestate, "vendor=1");
  up.response({ status: 200, auditId: "a-1" });
  obs.end({ ...end, auditId: "a-1" });
  assert.equal(obs.traceId?.(), "0af7651916cd43dd8448eb211c80319c");
  const [client, server] = spans;
  assert.equal(server.kind, 2);
  assert.equal(server.parentSpanId, "b7ad6b7169203331");
  assert.equal(client.kind, 3);
  assert.equal(client.parentSpanId, server.spanId);
  assert.equal(tp.split("-")[2], client.spanId);
  assert.deepEqual(
    [
      server.attributes["k8s.verb"],
      server.attributes["k8s.resource"],
      server.attributes["k8s.namespace.name"],
      server.attributes["k8s.name"],
      server.attributes["mca.cluster"],
      server.attributes["mca.rule"],
      server.attributes["http.response.status_code"],
    ],
    ["get", "pods", "default", "web", "east", "r1", 200],
  );
  assert.equal(client.attributes["server.address"], "east");
  assert.equal(client.attributes["http.response.status_code"], 200);
});

Deno.test("tracing: a fan-out records one client span per cluster; a failure is an error span", () => {
  const { spans, observer } = capture();
  const obs = observer.start(call());
  obs.decided?.({ plan: "fanout", clusters: ["east", "west"], missing: [] });
  const info = call().info;
  const a = obs.upstream?.({
    cluster: "east",
    method: "GET",
    target: "/api/v1/pods",
    info,
  })!;
  const b = obs.upstream?.({
    cluster: "west",
    method: "GET",
    target: "/api/v1/pods",
    info,
  })!;
  assert.notEqual(a.headers!.traceparent, b.headers!.traceparent);
  a.response({ status: 200 });
  b.failed("unreachable");
  obs.end(end);
  assert.equal(spans.length, 3);
  assert.deepEqual(
    spans.filter((s) => s.kind === 3).map((s) => s.attributes["mca.cluster"]),
    ["east", "west"],
  );
  assert.equal(spans[1].statusCode, 2);
  assert.equal(spans[2].parentSpanId, undefined);
  assert.equal(spans[2].attributes["mca.cluster"], "east+west");
});

Deno.test("tracing: an unsampled parent propagates flag 00 and records nothing", () => {
  const { spans, observer } = capture();
  const obs = observer.start(call(APP_TP.replace(/01$/, "00")));
  const up = obs.upstream?.({
    cluster: "east",
    method: "GET",
    target: "/",
    info: call().info,
  })!;
  assert.match(
    up.headers!.traceparent,
    /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-00$/,
  );
  up.response({ status: 200 });
  obs.end(end);
  assert.equal(spans.length, 0);
});

Deno.test("tracing: spans reach an OTLP/HTTP JSON receiver with the service name", async () => {
  const bodies: unknown[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      bodies.push({
        path: new URL(req.url).pathname,
        type: req.headers.get("content-type"),
        body: await req.json(),
      });
      return new Response("{}");
    },
  );
  try {
    const tracing = tracingFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${server.addr.port}/`,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_SERVICE_NAME: "mca-test",
      OTEL_RESOURCE_ATTRIBUTES: "k8s.pod.name=web-0",
    }, (m) => assert.fail(m))!;
    const obs = tracing.observer.start(call(APP_TP));
    obs.end(end);
    await tracing.close();
    assert.equal(bodies.length, 1);
    const got = bodies[0] as {
      path: string;
      type: string;
      body: ReturnType<typeof JSON.parse>;
    };
    assert.equal(got.path, "/v1/traces");
    assert.equal(got.type, "application/json");
    const rs = got.body.resourceSpans[0];
    const attrs = Object.fromEntries(
      rs.resource.attributes.map((
        a: { key: string; value: { stringValue: string } },
      ) => [a.key, a.value.stringValue]),
    );
    assert.equal(attrs["service.name"], "mca-test");
    assert.equal(attrs["k8s.pod.name"], "web-0");
    const span = rs.scopeSpans[0].spans[0];
    assert.equal(span.traceId, "0af7651916cd43dd8448eb211c80319c");
    assert.equal(span.kind, 2);
  } finally {
    await server.shutdown();
  }
});

Deno.test("tracing: the default protocol (http/protobuf) sends a protobuf body, labelled so", async () => {
  const got: { type: string | null; bytes: Uint8Array }[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      got.push({
        type: req.headers.get("content-type"),
        bytes: new Uint8Array(await req.arrayBuffer()),
      });
      return new Response(null);
    },
  );
  try {
    const tracing = tracingFromEnv({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:
        `http://127.0.0.1:${server.addr.port}/v1/traces`,
    }, (m) => assert.fail(m))!;
    tracing.observer.start(call(APP_TP)).end(end);
    await tracing.close();
    assert.equal(got.length, 1);
    assert.equal(got[0].type, "application/x-protobuf");
    // field 1 (resource_spans), wire type 2: tag byte 0x0a; never JSON's "{"
    assert.equal(got[0].bytes[0], 0x0a);
    const ascii = new TextDecoder().decode(got[0].bytes);
    assert.ok(ascii.includes("service.name"));
    assert.throws(() => JSON.parse(ascii));
  } finally {
    await server.shutdown();
  }
});

Deno.test("otlp: attribute values are typed as OTLP JSON expects", () => {
  const body = encode({ "service.name": "mca" }, [{
    traceId: "1".repeat(32),
    spanId: "2".repeat(16),
    name: "x",
    kind: 3,
    startNs: 1n,
    endNs: 2n,
    attributes: { s: "v", i: 200, b: true, d: 0.5 },
  }]) as {
    resourceSpans: {
      scopeSpans: {
        spans: { attributes: unknown; startTimeUnixNano: string }[];
      }[];
    }[];
  };
  const span = body.resourceSpans[0].scopeSpans[0].spans[0];
  assert.equal(span.startTimeUnixNano, "1");
  assert.deepEqual(span.attributes, [
    { key: "s", value: { stringValue: "v" } },
    { key: "i", value: { intValue: "200" } },
    { key: "b", value: { boolValue: true } },
    { key: "d", value: { doubleValue: 0.5 } },
  ]);
});

Deno.test("tracing: no valid parent → a new trace id and no tracestate upstream", () => {
  const { observer } = capture();
  const start = { ...call("00-zz-bad-01"), tracestate: "vendor=1" };
  const obs = observer.start(start);
  const up = eastGet(obs);
  assert.match(up.headers!.traceparent, TRACEPARENT);
  assert.equal(up.headers!.tracestate, undefined);
});
