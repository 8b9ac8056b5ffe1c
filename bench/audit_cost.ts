/**
 * Audit's own CPU per call, in process: the audit observer at `Metadata`
 * for 100 000 calls (start, decided, one upstream, end), first into memory,
 * then into the rotating log file, as process CPU time. Steadier than a throughput A/B on a
 * shared machine, because it measures only what audit adds.
 *
 *   deno run -A bench/audit_cost.ts
 *
 * @module
 */

import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type AuditBackend, newCounters } from "../lib/audit/backend.ts";
import { openLogBackend } from "../lib/audit/log_backend.ts";
import { auditObserver } from "../lib/audit/observer.ts";
import { parseAuditPolicy } from "../lib/audit/policy.ts";
import { parseRequestInfo } from "../lib/kube/request_info.ts";

const CALLS = 100_000;
const policy = parseAuditPolicy(
  `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    users: ["system:kube-proxy"]
  - level: None
    nonResourceURLs: ["/healthz*"]
  - level: Metadata
`,
  { file: "bench" },
);
const info = parseRequestInfo(
  "GET",
  "/api/v1/namespaces/default/configmaps/bench",
);
const identity = {
  username: "system:serviceaccount:default:app",
  namespace: "default",
  serviceAccount: "app",
};

async function run(backend: AuditBackend): Promise<number> {
  const observer = auditObserver(policy, backend);
  // CPU time, not wall time: on a shared machine other jobs stretch the
  // latter, hardly the former.
  const started = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) {
    const call = observer.start({
      id: i,
      info,
      method: "GET",
      startedAt: performance.now(),
      receivedAt: new Date(),
      upgrade: false,
      identity,
      userAgent: "h2load",
    });
    call.decided?.({ plan: "one", clusters: ["local"], missing: [] });
    call.upstream?.({ cluster: "local", method: "GET", target: "/", info })
      ?.response({ status: 200, auditId: "0b6e" });
    call.end({
      status: 200,
      bytesIn: 0,
      bytesOut: 260,
      durationMs: 1,
      cluster: "local",
      outcomes: [],
    });
    if (i % 1000 === 999) await backend.flush(); // as the 50 ms batches do
  }
  await backend.close();
  const used = process.cpuUsage(started);
  return (used.user + used.system) / CALLS;
}

const memory: AuditBackend = {
  counters: newCounters(),
  emit() {},
  flush: () => Promise.resolve(),
  close: () => Promise.resolve(),
};
const dir = join(fileURLToPath(new URL("../tmp/", import.meta.url)), "bench");
await Deno.mkdir(dir, { recursive: true });
const file = join(dir, "audit_cost.log");
for (let round = 1; round <= 3; round++) {
  const inMemory = await run(memory);
  const toFile = await run(openLogBackend(file, { log: console.error }));
  await Deno.remove(file);
  console.log(
    `round ${round}: ${
      inMemory.toFixed(1)
    } µs CPU per audited call in memory, ${
      toFile.toFixed(1)
    } µs written to a file`,
  );
}
