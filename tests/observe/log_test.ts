import assert from "node:assert/strict";
import {
  batchedStdoutSink,
  formatCall,
  formatEvent,
  isoNow,
  logObserver,
} from "../../lib/observe/log.ts";
import type { PolicyVerdict } from "../../lib/observe/observer.ts";
import { parseRequestInfo } from "../../lib/kube/request_info.ts";

const NOW = new Date("2026-11-24T10:00:00Z");

Deno.test("log: one JSON line per call with who/what/where", () => {
  const line = formatCall({
    info: parseRequestInfo(
      "PATCH",
      "/apis/apps/v1/namespaces/prod/deployments/web/scale",
    ),
    method: "PATCH",
    cluster: "local",
    status: 200,
    durationMs: 1.23456,
    bytesIn: 42,
    bytesOut: 512,
    userAgent: "client-go/v0.34",
  }, NOW);
  assert.ok(!line.includes("\n"));
  assert.deepEqual(JSON.parse(line), {
    time: "2026-11-24T10:00:00.000Z",
    level: "info",
    msg: "api call",
    cluster: "local",
    verb: "patch",
    method: "PATCH",
    path: "/apis/apps/v1/namespaces/prod/deployments/web/scale",
    apiGroup: "apps",
    apiVersion: "v1",
    namespace: "prod",
    resource: "deployments",
    subresource: "scale",
    name: "web",
    status: 200,
    durationMs: 1.235,
    bytesIn: 42,
    bytesOut: 512,
    userAgent: "client-go/v0.34",
  });
});

Deno.test("log: non-resource calls, failures and upgrades", () => {
  const line = JSON.parse(formatCall({
    info: parseRequestInfo("GET", "/version"),
    method: "GET",
    cluster: "local",
    status: 503,
    durationMs: 3,
    bytesIn: 0,
    bytesOut: 10,
    error: "connect ECONNREFUSED",
    upgrade: true,
  }, NOW));
  assert.equal(line.level, "error");
  assert.equal(line.verb, "get");
  assert.equal(line.resource, undefined);
  assert.equal(line.error, "connect ECONNREFUSED");
  assert.equal(line.upgrade, true);
  assert.equal(line.userAgent, "");
});

Deno.test("log: the query string (where a token could hide) is not logged", () => {
  const line = formatCall({
    info: parseRequestInfo("GET", "/api/v1/pods?watch=1&access_token=abc"),
    method: "GET",
    cluster: "local",
    status: 200,
    durationMs: 1,
    bytesIn: 0,
    bytesOut: 0,
  }, NOW);
  assert.ok(!line.includes("access_token"));
});

Deno.test("log: events", () => {
  assert.deepEqual(JSON.parse(formatEvent("warn", "x", { a: 1 }, NOW)), {
    time: "2026-11-24T10:00:00.000Z",
    level: "warn",
    msg: "x",
    a: 1,
  });
});

Deno.test("log: the batched sink writes every line, in order, in one write", async () => {
  const writes: string[] = [];
  const decoder = new TextDecoder();
  const sink = batchedStdoutSink({
    intervalMs: 60_000,
    write: (bytes) => writes.push(decoder.decode(bytes)),
  });
  sink.log("one");
  sink.log("two");
  assert.equal(writes.length, 0, "nothing before a flush");
  sink.flush();
  sink.flush();
  assert.deepEqual(writes, ["one\ntwo\n"], "one write, lines in order");
  const { promise, resolve } = Promise.withResolvers<string>();
  const timed = batchedStdoutSink({
    intervalMs: 1,
    write: (bytes) => resolve(decoder.decode(bytes)),
  });
  timed.log("three");
  assert.equal(await promise, "three\n", "the timer flushes on its own");
});

Deno.test("log: a stdout that cannot be written drops lines, says so once, and recovers", () => {
  const writes: string[] = [];
  const reports: string[] = [];
  let broken = true;
  const decoder = new TextDecoder();
  const sink = batchedStdoutSink({
    intervalMs: 60_000,
    write: (bytes) => {
      if (broken) throw new Error("Broken pipe (os error 32)");
      writes.push(decoder.decode(bytes));
    },
    report: (m) => reports.push(m),
  });
  sink.log("lost-1");
  sink.log("lost-2");
  sink.flush(); // must not throw
  sink.log("lost-3");
  sink.flush();
  assert.equal(reports.length, 1, reports.join("\n"));
  assert.match(reports[0], /Broken pipe.*2 lines dropped/);
  broken = false;
  sink.log("kept");
  sink.flush();
  assert.deepEqual(writes, ["kept\n"]);
  broken = true;
  sink.log("lost-4");
  sink.flush();
  assert.equal(reports.length, 2, "a new failure after recovery is told");
});

Deno.test("log: a real stdout pipe closed by its reader (EPIPE) does not stop the process", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../support/log_pipe_child.ts", import.meta.url).pathname,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const first = await reader.read();
  assert.equal(new TextDecoder().decode(first.value), "first\n");
  await reader.cancel();
  const stdin = child.stdin.getWriter();
  await stdin.write(new TextEncoder().encode("go\n"));
  await stdin.close();
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
  ]);
  assert.equal(status.code, 0, stderr);
  assert.match(stderr, /cannot write the log to stdout \(Broken pipe/);
  assert.match(stderr, /still running/);
});

Deno.test("log: a refusal names the rule, or isolation / default when none decided", () => {
  const lines: string[] = [];
  const refuse = (verdict: PolicyVerdict) => {
    const info = parseRequestInfo("GET", "/api/v1/namespaces/b/secrets");
    const o = logObserver((l) => lines.push(l)).start({
      id: 1,
      info,
      method: "GET",
      startedAt: performance.now(),
      receivedAt: NOW,
      upgrade: false,
    });
    o.decided?.({
      plan: "refused",
      clusters: [],
      missing: [],
      policy: { local: verdict },
    });
    o.end({
      status: 403,
      bytesIn: 0,
      bytesOut: 10,
      durationMs: 1,
      cluster: "local",
      outcomes: [],
    });
    return JSON.parse(lines.at(-1)!).policyRule;
  };
  const base = { allowed: false, mode: "enforce" as const, reason: "why" };
  assert.equal(
    refuse({ ...base, basis: "rule", rule: "no-secrets" }),
    "no-secrets",
  );
  assert.equal(refuse({ ...base, basis: "isolation" }), "isolation");
  assert.equal(refuse({ ...base, basis: "default" }), "default");
  assert.equal(refuse({ ...base, allowed: true, basis: "default" }), undefined);
});

Deno.test("log: isoNow is toISOString, across seconds and for every millisecond", () => {
  for (
    let ms = Date.UTC(2026, 11, 31, 23, 59, 58);
    ms < Date.UTC(2027, 0, 1, 0, 0, 1);
    ms += 1
  ) {
    assert.equal(isoNow(ms), new Date(ms).toISOString());
  }
});

Deno.test("log: the fields of a call line keep their order", () => {
  const line = formatCall({
    info: parseRequestInfo("GET", "/api/v1/namespaces/a/pods/p"),
    method: "GET",
    cluster: "east",
    status: 200,
    durationMs: 1,
    bytesIn: 0,
    bytesOut: 2,
    userAgent: "ua",
    upgrade: true,
    rule: "r",
    policyRule: "pr",
    traceId: "t",
    auditId: "a",
  }, NOW);
  assert.deepEqual(Object.keys(JSON.parse(line)), [
    "time",
    "level",
    "msg",
    "cluster",
    "verb",
    "method",
    "path",
    "apiGroup",
    "apiVersion",
    "namespace",
    "resource",
    "subresource",
    "name",
    "status",
    "durationMs",
    "bytesIn",
    "bytesOut",
    "userAgent",
    "upgrade",
    "rule",
    "policyRule",
    "traceId",
    "auditId",
  ]);
});
