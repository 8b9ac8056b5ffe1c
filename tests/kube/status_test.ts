import assert from "node:assert/strict";
import { failureStatus, statusResponse } from "../../lib/kube/status.ts";

Deno.test("status: a Kubernetes Status the SDKs can parse", () => {
  const status = failureStatus(503, "ServiceUnavailable", "upstream down");
  assert.deepEqual(status, {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: "upstream down",
    reason: "ServiceUnavailable",
    code: 503,
  });
  const { headers, body } = statusResponse(status, { retryAfterSeconds: 1 });
  assert.deepEqual(JSON.parse(body), status);
  assert.equal(headers["content-type"], "application/json");
  assert.equal(headers["retry-after"], "1");
  assert.equal(Number(headers["content-length"]), body.length);
  assert.equal(statusResponse(status).headers["retry-after"], undefined);
});

Deno.test("status: content-length counts bytes, not characters", () => {
  const { headers, body } = statusResponse(failureStatus(500, "X", "é✓"));
  assert.equal(
    Number(headers["content-length"]),
    new TextEncoder().encode(body).length,
  );
});
