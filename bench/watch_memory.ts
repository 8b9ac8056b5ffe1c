/**
 * Where the memory of one watch goes: mca (under `--inspect`) in front of
 * the fake upstream, a heap snapshot and /proc figures at idle and again
 * with N watches open (and after events flowed through them), and the diff
 * by constructor and retainer, divided by N. RSS growth minus JS heap growth
 * is what the runtime holds outside V8's heap (TLS state, socket buffers,
 * the allocator's slack).
 *
 *   deno run -A bench/watch_memory.ts [--watches 500] [--events 20]
 *        [--rate 10] [--v8-flags=--max-semi-space-size=2] [--top 25]
 *        [--main tmp/other/main.ts] [--no-snapshot] [--trim]
 *        [--trim-every MS] [--env K=V]
 *
 * `--v8-flags` unset runs what ships (`SHIPPED_V8_FLAGS`); `--v8-flags=`
 * alone runs V8's defaults.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Controlled, startControlled } from "./control.ts";
import { useMain } from "./mca.ts";
import { sampleRss, sleep } from "./procs.ts";
import { smapsByMapping } from "./idle_memory.ts";
import {
  diffHeaps,
  type HeapSummary,
  type Inspector,
  summarizeHeap,
} from "./heap_snapshot.ts";
import {
  type InspectedMca,
  startInspectedMca,
  v8FlagsOption,
} from "./inspected_mca.ts";

const CLIENTS = fileURLToPath(new URL("./watch_clients.ts", import.meta.url));

/** Memory of a process at one moment, KiB unless named otherwise. */
export interface MemPoint {
  rss: number;
  /** glibc's main heap (brk): most of Rust's and C's allocations. */
  brk: number;
  /** Anonymous mappings: V8's heap pages, thread arenas, stacks. */
  mmapAnon: number;
  anon: number;
  file: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

function status(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of Deno.readTextFileSync(`/proc/${pid}/status`).split("\n")) {
    const m = line.match(/^(\w+):\s+(\d+) kB/);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

async function point(pid: number, insp: Inspector): Promise<MemPoint> {
  // The snapshot collects garbage; read the heap right after one.
  await insp.call("HeapProfiler.collectGarbage");
  const u = await insp.evaluate("JSON.stringify(Deno.memoryUsage())");
  const m = JSON.parse(String(u));
  const s = status(pid);
  const maps = smapsByMapping(Deno.readTextFileSync(`/proc/${pid}/smaps`));
  return {
    rss: s.VmRSS,
    brk: maps.get("[heap]")?.rss ?? 0,
    mmapAnon: maps.get("[anonymous]")?.rss ?? 0,
    anon: s.RssAnon,
    file: s.RssFile,
    heapUsed: Math.round(m.heapUsed / 1024),
    heapTotal: Math.round(m.heapTotal / 1024),
    external: Math.round(m.external / 1024),
  };
}

function perWatch(a: MemPoint, b: MemPoint, n: number): string {
  const f = (k: keyof MemPoint) => `${k} ${((b[k] - a[k]) / n).toFixed(1)}`;
  const native = (b.rss - a.rss) - (b.heapTotal - a.heapTotal) -
    (b.external - a.external);
  return `KiB per watch: ${
    (Object.keys(a) as (keyof MemPoint)[]).map(f).join(", ")
  }; rss − heapTotal − external ${(native / n).toFixed(1)}`;
}

function printDiff(a: HeapSummary, b: HeapSummary, n: number, top: number) {
  console.log(
    `JS heap (snapshot self sizes): ${(a.totalBytes / 1024).toFixed(0)} → ${
      (b.totalBytes / 1024).toFixed(0)
    } KiB, ${((b.totalBytes - a.totalBytes) / n).toFixed(0)} B per watch`,
  );
  for (const row of diffHeaps(a, b, top)) {
    const via = row.via.map((v) => `${v.how} ${(v.bytes / n).toFixed(0)}`)
      .join("; ");
    console.log(
      `  ${(row.bytes / n).toFixed(0).padStart(6)} B ${
        (row.count / n).toFixed(2).padStart(6)
      }×  ${row.key}   ← ${via}`,
    );
  }
}

async function main(): Promise<void> {
  const flags = parseArgs({
    args: Deno.args,
    options: {
      watches: { type: "string", default: "500" },
      events: { type: "string", default: "20" },
      "v8-flags": { type: "string" },
      main: { type: "string" },
      top: { type: "string", default: "25" },
      /** /proc and heap totals only: a snapshot's own memory stays in RSS. */
      "no-snapshot": { type: "boolean" },
      /** After the events, glibc's malloc_trim(0) in mca (over FFI): is brk live? */
      trim: { type: "boolean" },
      /** malloc_trim(0) every this many ms while events flow (0: never). */
      "trim-every": { type: "string", default: "0" },
      /** Events per second per watch while pushing. */
      rate: { type: "string", default: "10" },
      /** Environment of mca, `K=V` (repeatable), e.g. MALLOC_ARENA_MAX=2. */
      env: { type: "string", multiple: true },
    },
  }).values;
  if (flags.main) useMain(flags.main);
  const n = Number(flags.watches);
  const run = await startInspectedMca("watch-memory", {
    v8Flags: v8FlagsOption(flags["v8-flags"]),
    env: Object.fromEntries(
      (flags.env ?? []).map((
        kv,
      ) => [kv.split("=")[0], kv.slice(kv.indexOf("=") + 1)]),
    ),
  });
  const { insp, mca } = run;
  const measure = async (label: string, base?: MemPoint) => {
    const p = await point(mca.pid, insp);
    console.log(`${label}: ${JSON.stringify(p)} (KiB)`);
    if (base) console.log(perWatch(base, p, n));
    return p;
  };
  const snap = async () =>
    flags["no-snapshot"] ? undefined : summarizeHeap(await insp.heapSnapshot());
  const diff = (a?: HeapSummary, b?: HeapSummary) => {
    if (a && b) printDiff(a, b, n, Number(flags.top));
  };
  try {
    await sleep(1000);
    const idle = await measure("idle");
    const snapIdle = await snap();
    const clients = await openWatches(run, n);
    await measure(`${n} watches open`, idle);
    const snapOpen = await snap();
    diff(snapIdle, snapOpen);
    const events = Number(flags.events);
    if (events > 0) {
      await pushEvents(run, clients, {
        events,
        n,
        rate: Number(flags.rate),
        trimEveryMs: Number(flags["trim-every"]),
      });
      await measure(`after ${events} events each`, idle);
      if (flags.trim) {
        console.log(
          `malloc_trim(0) took ${(await mallocTrim(insp)).toFixed(2)} ms`,
        );
        await measure("after malloc_trim(0)", idle);
      }
      diff(snapOpen, await snap());
    }
    await clients.send({ cmd: "close" }, 5_000).catch(() => {});
    await clients.stop();
  } finally {
    await run.stop();
  }
}

async function openWatches(run: InspectedMca, n: number): Promise<Controlled> {
  const clients = await startControlled("watch-clients", CLIENTS, [
    JSON.stringify({
      port: run.mca.port,
      path: "/api/v1/namespaces/default/configmaps?watch=1",
      caPem: run.mca.appCaPem,
      token: "any-app-token",
      count: n,
      parallel: 32,
    }),
  ], join(run.dir, "watch-clients"));
  const opened = await clients.send({ cmd: "open" }, 180_000);
  if (Number(opened.failed) > 0) {
    throw new Error(`open: ${JSON.stringify(opened)}`);
  }
  await run.upstream.send({ cmd: "waitWatches", n, timeoutMs: 60_000 }, 70_000);
  await sleep(1000);
  return clients;
}

/**
 * `events` per watch at `rate`/s; waits (bounded) until all have arrived and
 * prints mca's peak RSS meanwhile. With `trimEveryMs`, malloc_trim(0) runs in
 * mca at that interval during the flow.
 */
async function pushEvents(
  run: InspectedMca,
  clients: Controlled,
  o: { events: number; n: number; rate: number; trimEveryMs: number },
): Promise<void> {
  const sampler = sampleRss(run.mca.pid);
  const trims: number[] = [];
  const trimmer = o.trimEveryMs > 0
    ? setInterval(() => {
      mallocTrim(run.insp).then((ms) => trims.push(ms), () => {});
    }, o.trimEveryMs)
    : undefined;
  try {
    await run.upstream.send({
      cmd: "push",
      rate: o.rate,
      durationMs: o.events * 1000 / o.rate,
      padBytes: 600,
    }, o.events * 1000 / o.rate + 60_000);
    for (let i = 0; i < 40; i++) {
      const c = await clients.send({ cmd: "count" }, 10_000);
      if (Number(c.events) >= o.events * o.n) break;
      await sleep(250);
    }
  } finally {
    clearInterval(trimmer);
  }
  const { peakKiB, lastKiB } = sampler.stop();
  console.log(
    `during the flow: peak RSS ${(peakKiB / 1024).toFixed(1)} MiB, at its end ${
      (lastKiB / 1024).toFixed(1)
    } MiB${
      trims.length
        ? `; ${trims.length} malloc_trim(0) calls, ${
          (trims.reduce((a, b) => a + b, 0) / trims.length).toFixed(1)
        } ms each`
        : ""
    }`,
  );
}

/** glibc's malloc_trim(0) inside the inspected process; its duration, ms. */
async function mallocTrim(insp: Inspector): Promise<number> {
  return Number(
    await insp.evaluate(`(() => {
      const t = performance.now();
      Deno.dlopen("libc.so.6", {
        malloc_trim: { parameters: ["usize"], result: "i32" },
      }).symbols.malloc_trim(0);
      return performance.now() - t;
    })()`),
  );
}

if (import.meta.main) await main();
