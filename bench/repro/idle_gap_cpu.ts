/**
 * Does the same fixed piece of work cost more CPU when the process sleeps
 * between pieces? A proxy at concurrency 1 behind a 5 ms round trip sleeps
 * ~7 ms between requests; at round trip 0 it hardly sleeps. This runs one
 * fixed CPU-only task (JSON encode/decode of a Kubernetes-sized object, no
 * I/O) N times back to back, then N times with a timer gap between runs, and
 * prints the process CPU time (getrusage, all threads) per task for each.
 *
 *   deno run -A bench/repro/idle_gap_cpu.ts [N=400] [gapMs=5]
 *
 * @module
 */

import { cpuUsage } from "node:process";

const n = Number(Deno.args[0] ?? 400);
const gapMs = Number(Deno.args[1] ?? 5);
const object = {
  kind: "ConfigMap",
  apiVersion: "v1",
  metadata: { name: "bench", namespace: "default", labels: { a: "b" } },
  data: Object.fromEntries(
    Array.from({ length: 40 }, (_, i) => [`key${i}`, "x".repeat(20)]),
  ),
};

/** About 100-200 µs of pure JS on this machine. */
function task(): number {
  let total = 0;
  for (let i = 0; i < 60; i++) {
    total += (JSON.parse(JSON.stringify(object)) as typeof object).data.key1
      .length;
  }
  return total;
}

function cpuUs(): number {
  const u = cpuUsage();
  return u.user + u.system;
}

async function measure(gap: number): Promise<number> {
  const before = cpuUs();
  for (let i = 0; i < n; i++) {
    task();
    // A resolved promise still goes through the event loop without sleeping.
    await new Promise((r) =>
      gap > 0 ? setTimeout(r, gap) : queueMicrotask(r as () => void)
    );
  }
  return (cpuUs() - before) / n;
}

for (let i = 0; i < 200; i++) task(); // past V8's tiering
for (let round = 1; round <= 3; round++) {
  const busy = await measure(0);
  const gapped = await measure(gapMs);
  console.log(
    `round ${round}: back to back ${busy.toFixed(0)} µs/task, ` +
      `${gapMs} ms apart ${gapped.toFixed(0)} µs/task (×${
        (gapped / busy).toFixed(2)
      })`,
  );
}
