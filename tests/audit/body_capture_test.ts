/**
 * Request bodies reach the audit through the pipeline: streamed upstream as
 * they come, with a bounded copy kept beside them for `Request` level.
 */
import assert from "node:assert/strict";
import { type AuditBackend, newCounters } from "../../lib/audit/backend.ts";
import { AUDIT_BODY_BYTES, auditObserver } from "../../lib/audit/observer.ts";
import { parseAuditPolicy } from "../../lib/audit/policy.ts";
import { appCall, startFixture } from "../support/sidecar_fixture.ts";

function memoryBackend(): AuditBackend & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    counters: newCounters(),
    emit: (json) => void lines.push(json),
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

const REQUEST_LEVEL = parseAuditPolicy(
  "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Request\n",
  { file: "p" },
);

function completed(lines: string[]) {
  return lines.map((l) => JSON.parse(l)).filter((e) =>
    e.stage === "ResponseComplete"
  );
}

Deno.test("audit: a streamed create's body is recorded as requestObject, and sent upstream whole", async () => {
  const backend = memoryBackend();
  const f = await startFixture({
    observers: [auditObserver(REQUEST_LEVEL, backend)],
  });
  try {
    const body = JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "settings" },
      data: { a: "1" },
    });
    const answer = await appCall(
      f,
      "POST",
      "/api/v1/namespaces/team-a/configmaps",
      { body, headers: { "content-type": "application/json" } },
    );
    assert.ok(answer.status < 500, answer.text);
    const [event] = completed(backend.lines);
    assert.deepEqual(event.requestObject, JSON.parse(body));
    assert.equal(event.objectRef.name, "settings");
    const sent = f.upstream.requests.find((r) => r.method === "POST");
    assert.equal(sent?.bodyBytes, new TextEncoder().encode(body).length);
  } finally {
    await f.close();
  }
});

Deno.test("audit: a body over the audit bound is left out of the event, not cut, and still sent whole", async () => {
  const backend = memoryBackend();
  const f = await startFixture({
    observers: [auditObserver(REQUEST_LEVEL, backend)],
  });
  try {
    const body = JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "big" },
      data: { a: "x".repeat(AUDIT_BODY_BYTES + 10) },
    });
    await appCall(f, "POST", "/api/v1/namespaces/team-a/configmaps", {
      body,
      headers: { "content-type": "application/json" },
    });
    const [event] = completed(backend.lines);
    assert.equal(event.requestObject, undefined);
    const sent = f.upstream.requests.find((r) => r.method === "POST");
    assert.equal(sent?.bodyBytes, new TextEncoder().encode(body).length);
  } finally {
    await f.close();
  }
});
