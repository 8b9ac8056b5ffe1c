/**
 * Request bodies reach the audit through the pipeline: streamed upstream as
 * they come, with a bounded copy kept beside them for `Request` level.
 */
import assert from "node:assert/strict";
import { memoryBackend } from "../support/audit_memory.ts";
import { AUDIT_BODY_BYTES, auditObserver } from "../../lib/audit/observer.ts";
import { parseAuditPolicy } from "../../lib/audit/policy.ts";
import {
  appCall,
  rawExchange,
  startFixture,
} from "../support/sidecar_fixture.ts";

const REQUEST_LEVEL = parseAuditPolicy(
  "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Request\n",
  { file: "p" },
);

function completed(lines: string[]) {
  return lines.map((l) => JSON.parse(l)).filter((e) =>
    e.stage === "ResponseComplete"
  );
}

/**
 * Creates a ConfigMap through a sidecar auditing at `Request` level; gives
 * the ResponseComplete event and the body size the upstream received.
 */
async function auditedCreate(data: Record<string, string>) {
  const backend = memoryBackend();
  const f = await startFixture({
    observers: [auditObserver(REQUEST_LEVEL, backend)],
  });
  try {
    const body = JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "settings" },
      data,
    });
    const answer = await appCall(
      f,
      "POST",
      "/api/v1/namespaces/team-a/configmaps",
      { body, headers: { "content-type": "application/json" } },
    );
    assert.ok(answer.status < 500, answer.text);
    const sent = f.upstream.requests.find((r) => r.method === "POST");
    assert.equal(sent?.bodyBytes, new TextEncoder().encode(body).length);
    return { event: completed(backend.lines)[0], body };
  } finally {
    await f.close();
  }
}

Deno.test("audit: a create's body is recorded as requestObject, and sent upstream whole", async () => {
  const { event, body } = await auditedCreate({ a: "1" });
  assert.deepEqual(event.requestObject, JSON.parse(body));
  assert.equal(event.objectRef.name, "settings");
});

Deno.test("audit: a body over the audit bound is left out of the event, not cut, and still sent whole", async () => {
  const { event } = await auditedCreate({
    a: "x".repeat(AUDIT_BODY_BYTES + 10),
  });
  assert.equal(event.requestObject, undefined);
});

Deno.test("audit: a chunked (streamed) body is recorded from the copy kept beside the stream", async () => {
  const backend = memoryBackend();
  const f = await startFixture({
    observers: [auditObserver(REQUEST_LEVEL, backend)],
  });
  try {
    const body = JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "streamed" },
    });
    const half = Math.floor(body.length / 2);
    const chunk = (t: string) => `${t.length.toString(16)}\r\n${t}\r\n`;
    const answer = await rawExchange(
      f.port,
      f.appCa(),
      "POST /api/v1/namespaces/team-a/configmaps HTTP/1.1\r\nhost: localhost\r\n" +
        "content-type: application/json\r\ntransfer-encoding: chunked\r\n" +
        "connection: close\r\n\r\n" + chunk(body.slice(0, half)) +
        chunk(body.slice(half)) + "0\r\n\r\n",
    );
    assert.match(answer, /^HTTP\/1\.1 2\d\d /);
    const [event] = completed(backend.lines);
    assert.deepEqual(event.requestObject, JSON.parse(body));
  } finally {
    await f.close();
  }
});

const REQUEST_RESPONSE = parseAuditPolicy(
  "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n",
  { file: "p" },
);

Deno.test("audit: RequestResponse records the answer as responseObject, on both upstream paths, and never for a watch", async () => {
  const backend = memoryBackend();
  const f = await startFixture({
    observers: [auditObserver(REQUEST_RESPONSE, backend)],
  });
  try {
    for (
      const path of [
        "/api/v1/namespaces/team-a/configmaps/c", // node:https path
        "/api/v1/namespaces/team-a/configmaps", // fetch path (a LIST)
      ]
    ) {
      const answer = await appCall(f, "GET", path);
      const event = completed(backend.lines).at(-1);
      assert.deepEqual(event.responseObject, JSON.parse(answer.text), path);
    }
    const metadata = parseAuditPolicy(
      "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Request\n",
      { file: "p" },
    );
    const other = memoryBackend();
    const g = await startFixture({
      observers: [auditObserver(metadata, other)],
    });
    try {
      await appCall(g, "GET", "/api/v1/namespaces/team-a/configmaps/c");
      assert.equal(completed(other.lines).at(-1).responseObject, undefined);
    } finally {
      await g.close();
    }
  } finally {
    await f.close();
  }
});
