import assert from "node:assert/strict";
import fc from "fast-check";
import { memoryBackend } from "../support/audit_memory.ts";
import { microTime, microTimeAt, stageEvent } from "../../lib/audit/event.ts";
import { auditObserver } from "../../lib/audit/observer.ts";
import {
  CallFieldsCache,
  type StageExtra,
  stageWriter,
} from "../../lib/audit/stage_writer.ts";
import { type AuditStage, parseAuditPolicy } from "../../lib/audit/policy.ts";
import { parseRequestInfo } from "../../lib/kube/request_info.ts";
import type { CallEnd } from "../../lib/observe/observer.ts";

const policy = (level: string, extra = "") =>
  parseAuditPolicy(
    `apiVersion: audit.k8s.io/v1\nkind: Policy\n${extra}rules:\n- level: None\n  nonResourceURLs: [/healthz]\n- level: ${level}\n`,
    { file: "p" },
  );
const identity = {
  username: "system:serviceaccount:team-a:app",
  namespace: "team-a",
  serviceAccount: "app",
  podName: "app-1",
  podUid: "uid-1",
};
function call(method: string, target: string, upgrade = false) {
  return {
    id: 1,
    info: parseRequestInfo(method, target),
    method,
    target,
    remoteAddr: "127.0.0.1",
    startedAt: 1000.25,
    receivedAt: new Date("2026-01-02T03:04:05.678Z"),
    userAgent: "kubectl/v1.34.4",
    upgrade,
    identity,
  };
}
const end = (status: number, extra: Partial<CallEnd> = {}): CallEnd => ({
  status,
  bytesIn: 0,
  bytesOut: 0,
  durationMs: 1,
  cluster: "east",
  outcomes: [],
  ...extra,
});

Deno.test("audit: microTime has six fractional digits in UTC", () => {
  assert.equal(
    microTime(new Date("2026-01-02T03:04:05.678Z"), 912.7),
    "2026-01-02T03:04:05.678912Z",
  );
  assert.equal(microTime(new Date(0)), "1970-01-01T00:00:00.000000Z");
});

Deno.test("audit: microTimeAt (cached per second) agrees with microTime (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 0, max: 4e12, noNaN: true }), {
        minLength: 1,
        maxLength: 20,
      }),
      fc.integer({ min: 0, max: 2000 }),
      (starts, step) => {
        // runs of nearby instants hit the cache; jumps refill it
        for (const start of starts) {
          for (const ms of [start, start + step, start + step / 7]) {
            const whole = Math.floor(ms);
            assert.equal(
              microTimeAt(ms),
              microTime(new Date(whole), (ms - whole) * 1000),
            );
          }
        }
      },
    ),
    { seed: 3, numRuns: 2000 },
  );
});

Deno.test("audit: Metadata level — RequestReceived and ResponseComplete, no body, annotations", () => {
  const backend = memoryBackend();
  const obs = auditObserver(policy("Metadata"), backend).start(
    call("POST", "/api/v1/namespaces/team-a/configmaps?fieldManager=x"),
  );
  obs.decided?.({
    plan: "one",
    clusters: ["east"],
    missing: [],
    rule: "configs-east",
    policy: {
      east: {
        allowed: true,
        mode: "enforce",
        rule: "own-ns",
        basis: "rule",
        reason: "granted",
      },
    },
  });
  obs.upstream?.({
    cluster: "east",
    method: "POST",
    target: "/x",
    info: call("POST", "/x").info,
  })
    ?.response({ status: 201, auditId: "up-1" });
  obs.end(
    end(201, {
      requestBody: new TextEncoder().encode('{"metadata":{"name":"cm1"}}'),
    }),
  );
  const [received, complete] = backend.lines.map((l) => JSON.parse(l));
  assert.equal(backend.lines.length, 2);
  assert.equal(received.stage, "RequestReceived");
  assert.equal(complete.stage, "ResponseComplete");
  assert.equal(received.auditID, complete.auditID);
  assert.match(received.auditID, /^[0-9a-f-]{36}$/);
  assert.equal(
    received.requestURI,
    "/api/v1/namespaces/team-a/configmaps?fieldManager=x",
  );
  assert.equal(received.verb, "create");
  assert.deepEqual(received.user, {
    username: "system:serviceaccount:team-a:app",
    groups: [
      "system:serviceaccounts",
      "system:serviceaccounts:team-a",
      "system:authenticated",
    ],
    extra: {
      "authentication.kubernetes.io/pod-name": ["app-1"],
      "authentication.kubernetes.io/pod-uid": ["uid-1"],
    },
  });
  assert.deepEqual(received.sourceIPs, ["127.0.0.1"]);
  assert.deepEqual(received.objectRef, {
    resource: "configmaps",
    namespace: "team-a",
    apiVersion: "v1",
  });
  assert.deepEqual(complete.objectRef, {
    resource: "configmaps",
    namespace: "team-a",
    name: "cm1",
    apiVersion: "v1",
  });
  assert.equal(received.responseStatus, undefined);
  assert.deepEqual(complete.responseStatus, { metadata: {}, code: 201 });
  assert.equal(complete.requestObject, undefined);
  assert.equal(
    received.requestReceivedTimestamp,
    "2026-01-02T03:04:05.678000Z",
  );
  assert.match(
    complete.stageTimestamp,
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/,
  );
  assert.deepEqual(complete.annotations, {
    "mca.io/clusters": "east",
    "mca.io/routing-rule": "configs-east",
    "mca.io/policy-decision": "allow",
    "mca.io/policy-rule": "own-ns",
    "mca.io/policy-reason": "granted",
    "mca.io/upstream-audit-id": "up-1",
  });
  assert.equal(Object.keys(received).at(-1), "stageTimestamp");
});

Deno.test("audit: Request level records the JSON body, omitManagedFields strips it", () => {
  const backend = memoryBackend();
  const obs = auditObserver(
    policy("Request", "omitManagedFields: true\n"),
    backend,
  )
    .start(call("PUT", "/api/v1/namespaces/a/configmaps/c"));
  const body = {
    metadata: { name: "c", managedFields: [{ manager: "m" }] },
    data: { k: "v" },
  };
  obs.end(
    end(200, { requestBody: new TextEncoder().encode(JSON.stringify(body)) }),
  );
  const complete = JSON.parse(backend.lines[1]);
  assert.deepEqual(complete.requestObject, {
    metadata: { name: "c" },
    data: { k: "v" },
  });
  assert.equal(JSON.parse(backend.lines[0]).requestObject, undefined);
});

Deno.test("audit: a non-JSON body is left out, not recorded wrongly", () => {
  const backend = memoryBackend();
  const obs = auditObserver(policy("RequestResponse"), backend).start(
    call("POST", "/api/v1/namespaces/a/pods"),
  );
  obs.end(
    end(201, { requestBody: new Uint8Array([0x6b, 0x38, 0x73, 0x00, 1, 2]) }),
  );
  assert.equal(JSON.parse(backend.lines[1]).requestObject, undefined);
});

Deno.test("audit: watch gets ResponseStarted; omitStages drops stages; errors carry the message", () => {
  const backend = memoryBackend();
  const obs = auditObserver(
    policy("Metadata", "omitStages: [RequestReceived]\n"),
    backend,
  )
    .start(call("GET", "/api/v1/pods?watch=1"));
  obs.decided?.({
    plan: "fanout",
    clusters: ["local", "east"],
    missing: ["west"],
  });
  const info = call("GET", "/x").info;
  obs.upstream?.({ cluster: "local", method: "GET", target: "/x", info })
    ?.response({ status: 200, auditId: "a" });
  obs.upstream?.({ cluster: "east", method: "GET", target: "/x", info })
    ?.response({ status: 200, auditId: "b" });
  obs.end(end(503, { error: "cluster east unreachable" }));
  const events = backend.lines.map((l) => JSON.parse(l));
  assert.deepEqual(events.map((e) => e.stage), [
    "ResponseStarted",
    "ResponseComplete",
  ]);
  assert.deepEqual(events[0].responseStatus, { metadata: {}, code: 200 });
  assert.deepEqual(events[1].responseStatus, {
    metadata: {},
    status: "Failure",
    message: "cluster east unreachable",
    code: 503,
  });
  assert.equal(
    events[1].annotations["mca.io/upstream-audit-id"],
    "local=a,east=b",
  );
  assert.equal(events[1].annotations["mca.io/missing-clusters"], "west");
  assert.equal(events[0].verb, "watch");
});

Deno.test("audit: policy denial is annotated with rule, reason and the denied clusters", () => {
  const backend = memoryBackend();
  const obs = auditObserver(policy("Metadata"), backend).start(
    call("GET", "/api/v1/secrets"),
  );
  obs.decided?.({
    plan: "fanout",
    clusters: ["local"],
    missing: ["east"],
    policy: {
      local: {
        allowed: true,
        mode: "enforce",
        basis: "default",
        reason: "default allow",
      },
      east: {
        allowed: false,
        mode: "enforce",
        rule: "no-secrets",
        basis: "rule",
        reason: "secrets are denied",
      },
    },
  });
  obs.end(end(200));
  const a = JSON.parse(backend.lines[1]).annotations;
  assert.equal(a["mca.io/policy-decision"], "partial", "local answered");
  assert.equal(a["mca.io/policy-rule"], "no-secrets");
  assert.equal(a["mca.io/policy-reason"], "secrets are denied");
  assert.equal(a["mca.io/policy-denied-clusters"], "east");
  // a call refused on every cluster still names them
  const refused = auditObserver(policy("Metadata"), backend).start(
    call("GET", "/api/v1/secrets"),
  );
  const no = {
    allowed: false,
    mode: "enforce" as const,
    basis: "isolation" as const,
    reason: "isolation",
  };
  refused.decided?.({
    plan: "refused",
    clusters: [],
    missing: [],
    policy: { local: no, east: no },
  });
  refused.end(end(403));
  const r = JSON.parse(backend.lines.at(-1)!).annotations;
  assert.equal(r["mca.io/policy-decision"], "deny");
  assert.equal(r["mca.io/policy-denied-clusters"], "local,east");
  assert.equal(r["mca.io/clusters"], undefined);
});

Deno.test("audit: level None writes nothing; no identity gives an empty user", () => {
  const backend = memoryBackend();
  const observer = auditObserver(policy("Metadata"), backend);
  observer.start(call("GET", "/healthz")).end(end(200));
  assert.equal(backend.lines.length, 0);
  const anonymous = { ...call("GET", "/api/v1/pods"), identity: undefined };
  observer.start(anonymous).end(end(200));
  assert.deepEqual(JSON.parse(backend.lines[0]).user, {});
});

Deno.test("audit: no header, token or credential field can appear in an event", () => {
  const backend = memoryBackend();
  const c = { ...call("GET", "/api/v1/pods"), traceparent: "00-abc-def-01" };
  auditObserver(policy("RequestResponse"), backend).start(c).end(end(200));
  for (const line of backend.lines) {
    assert.doesNotMatch(line, /authorization|bearer|token|traceparent/i);
  }
});

Deno.test("audit: the per-call stage writer produces exactly JSON.stringify(stageEvent)", () => {
  const base = {
    level: "Request" as const,
    auditID: "id",
    requestURI: '/api/v1/namespaces/a/pods?x="y"',
    verb: "create",
    user: { username: "u", groups: ["g"] },
    sourceIPs: ["::1"],
    userAgent: "ua \u2028",
    objectRef: { resource: "pods", namespace: "a" },
    requestReceivedTimestamp: "2026-01-01T00:00:00.000000Z",
  };
  const write = stageWriter(base);
  const extras: StageExtra[] = [
    { at: "t1" },
    { at: "t2", code: 200 },
    { at: "t3", code: 403, message: 'no "way"', annotations: { a: "b" } },
    { at: "t4", code: 500, requestObject: { k: [1, "2"] }, annotations: {} },
  ];
  for (const extra of extras) {
    assert.equal(
      write("ResponseComplete", extra),
      JSON.stringify(stageEvent(base, "ResponseComplete", extra)),
    );
  }
  base.objectRef = { ...base.objectRef, name: "p" } as typeof base.objectRef;
  assert.equal(
    write("ResponseComplete", extras[1]),
    JSON.stringify(stageEvent(base, "ResponseComplete", extras[1])),
  );
  assert.match(write("ResponseComplete", extras[1]), /"name":"p"/);
});

Deno.test("audit: events of calls sharing one fields cache are each exactly JSON.stringify of the event (property)", () => {
  const text = fc.string({ unit: "grapheme", maxLength: 12 });
  const ref = fc.option(
    fc.record({
      resource: fc.constantFrom("pods", "configmaps"),
      namespace: fc.option(fc.constantFrom("a", "b"), { nil: undefined }),
      name: fc.option(text, { nil: undefined }),
    }, { requiredKeys: ["resource"] }),
    { nil: undefined },
  );
  const users = [{}, { username: "u", groups: ["g"] }];
  const base = fc.record({
    level: fc.constantFrom("Metadata" as const, "Request" as const),
    auditID: fc.uuid(),
    requestURI: fc.constantFrom("/api/v1/pods", '/api?x="\\u00e9"', "/é"),
    verb: fc.constantFrom("get", "list", "create"),
    user: fc.constantFrom(...users),
    sourceIPs: fc.option(
      fc.constantFrom("::1", "10.0.0.1").map((ip) => [ip]),
      { nil: undefined },
    ),
    userAgent: fc.option(fc.constantFrom("kubectl", "ua \u2028", "水"), {
      nil: undefined,
    }),
    objectRef: ref,
    requestReceivedTimestamp: fc.constant("2026-01-01T00:00:00.000000Z"),
  }, {
    requiredKeys: [
      "level",
      "auditID",
      "requestURI",
      "verb",
      "user",
      "requestReceivedTimestamp",
    ],
  });
  const extra = fc.record({
    at: fc.constant("2026-01-01T00:00:00.000001Z"),
    code: fc.option(fc.constantFrom(200, 201, 404, 500), { nil: undefined }),
    message: fc.option(text, { nil: undefined }),
    annotations: fc.option(fc.dictionary(text, text, { maxKeys: 3 }), {
      nil: undefined,
    }),
  }, { requiredKeys: ["at"] });
  const stage = fc.constantFrom<AuditStage>(
    "RequestReceived",
    "ResponseStarted",
    "ResponseComplete",
  );
  // one cache across every run: calls repeat, differ, and repeat again
  const cache = new CallFieldsCache();
  fc.assert(
    fc.property(fc.array(fc.tuple(base, stage, extra), { minLength: 1 }), (
      calls,
    ) => {
      for (const [b, s, e] of calls) {
        assert.equal(
          stageWriter(b, cache)(s, e),
          JSON.stringify(stageEvent(b, s, e)),
        );
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("audit: a call that reached several clusters records each one's outcome", () => {
  const backend = memoryBackend();
  const obs = auditObserver(policy("Metadata"), backend).start(
    call("GET", "/api/v1/namespaces/team-a/configmaps"),
  );
  obs.end(end(200, {
    cluster: "east+west",
    outcomes: [
      { cluster: "east", status: 200 },
      { cluster: "west", error: "unreachable" },
    ],
  }));
  const complete = JSON.parse(backend.lines.at(-1) ?? "{}");
  assert.equal(
    complete.annotations["mca.io/cluster-outcomes"],
    "east=200,west=unreachable",
  );
  const single = memoryBackend();
  const one = auditObserver(policy("Metadata"), single).start(
    call("GET", "/api/v1/namespaces/team-a/configmaps"),
  );
  one.end(end(200, { outcomes: [{ cluster: "east", status: 200 }] }));
  const alone = JSON.parse(single.lines.at(-1) ?? "{}");
  assert.equal(alone.annotations?.["mca.io/cluster-outcomes"], undefined);
});
