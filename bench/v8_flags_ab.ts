/**
 * What a V8 heap flag costs and saves: mca variants that differ only in
 * `--v8-flags` (default, a second default as the A/A control, and
 * `--max-semi-space-size` of 1, 2, 4 and 8 MiB) are started side by side and
 * loaded AT THE SAME TIME (one h2load each, same concurrency, same fake
 * upstream), so other jobs on the machine hit all of them alike; CPU per
 * request (user+sys from /proc/<pid>/stat) is divided by the default's in
 * the same round. Then the same variants' idle RSS, and (one after the
 * other, in an order that alternates between rounds) their peak RSS with
 * many watches open and events flowing.
 *
 *   deno run -A bench/v8_flags_ab.ts [--rounds 5] [--seconds 6]
 *        [--watches 1000] [--watch-rounds 2] [--only cpu,watch]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import type { Controlled } from "./control.ts";
import { runH2load } from "./h2load.ts";
import { cpuSeconds, memory, sleep } from "./procs.ts";
import { type Mca, startMca } from "./mca.ts";
import { startBenchUpstream } from "./inspected_mca.ts";
import { runWatches } from "./watch.ts";
import { foreignPercent, loadSnapshot } from "./machine_load.ts";
import { median, round } from "./stats.ts";

/** The variants: name → V8 flags. */
export const VARIANTS: Record<string, string[]> = {
  default: [],
  "default-b": [],
  semi1: ["--max-semi-space-size=1"],
  semi2: ["--max-semi-space-size=2"],
  semi4: ["--max-semi-space-size=4"],
  semi8: ["--max-semi-space-size=8"],
};

const WORKLOADS = {
  "GET c=16": { path: "/api/v1/namespaces/default/configmaps/bench", c: 16 },
  "LIST 1MB c=4": { path: "/big?bytes=1048576&chunk=1600", c: 4 },
};

interface Ctx {
  dir: string;
  upstream: Controlled;
  target: { realSaDir: string; host: string; port: number };
}

function start(ctx: Ctx, name: string, tag: string): Promise<Mca> {
  const flags = VARIANTS[name];
  return startMca(ctx.target, {
    dir: ctx.dir,
    name: `${name}-${tag}`,
    v8Flags: flags,
  });
}

async function oneRound(
  mcas: Record<string, Mca>,
  w: { path: string; c: number },
  o: { seconds: number; dir: string },
): Promise<Record<string, { cpuUs: number; reqPerS: number }>> {
  const names = Object.keys(mcas);
  const before = names.map((n) => cpuSeconds([mcas[n].pid]));
  const results = await Promise.all(names.map((n) =>
    runH2load({
      url: `https://127.0.0.1:${mcas[n].port}${w.path}`,
      concurrency: w.c,
      durationS: o.seconds,
      warmupS: 1,
      headers: {
        "accept-encoding": "identity",
        authorization: "Bearer bench-app-placeholder",
      },
      logFile: join(o.dir, `h2load-${n}.log`),
    })
  ));
  const out: Record<string, { cpuUs: number; reqPerS: number }> = {};
  names.forEach((n, i) => {
    const r = results[i];
    if (r.error || r.failed > 0) {
      throw new Error(`${n}: ${r.error ?? `${r.failed} failed`}`);
    }
    const cpu = cpuSeconds([mcas[n].pid]) - before[i];
    out[n] = { cpuUs: cpu * 1e6 / r.loggedRequests, reqPerS: r.reqPerS };
  });
  return out;
}

async function cpuSection(ctx: Ctx, rounds: number, seconds: number) {
  const mcas: Record<string, Mca> = {};
  for (const n of Object.keys(VARIANTS)) mcas[n] = await start(ctx, n, "cpu");
  try {
    await sleep(2000);
    console.log(
      "idle RSS MiB: " +
        Object.entries(mcas).map(([n, m]) =>
          `${n} ${round(memory(m.pid).rssKiB / 1024, 1)}`
        ).join(", "),
    );
    for (const [label, w] of Object.entries(WORKLOADS)) {
      await oneRound(mcas, w, { seconds: 2, dir: ctx.dir }); // warm-up
      const ratios: Record<string, number[]> = {};
      for (let i = 1; i <= rounds; i++) {
        const load0 = loadSnapshot();
        const r = await oneRound(mcas, w, { seconds, dir: ctx.dir });
        const { foreignPct } = foreignPercent(load0, loadSnapshot());
        const line = Object.entries(r).map(([n, v]) => {
          const ratio = v.cpuUs / r.default.cpuUs;
          (ratios[n] ??= []).push(ratio);
          return `${n} ${round(v.cpuUs, 0)} µs (×${round(ratio, 3)}, ${
            round(v.reqPerS, 0)
          }/s)`;
        }).join("; ");
        console.log(`${label} round ${i} (others ${foreignPct}%): ${line}`);
      }
      for (const [n, list] of Object.entries(ratios)) {
        console.log(
          `${label} ${n}: CPU/req ÷ default median ×${
            round(median(list), 3)
          }, range ×${round(Math.min(...list), 3)}–×${
            round(Math.max(...list), 3)
          }`,
        );
      }
    }
    console.log(
      "RSS after load MiB: " +
        Object.entries(mcas).map(([n, m]) =>
          `${n} ${round(memory(m.pid).rssKiB / 1024, 1)} (HWM ${
            round(memory(m.pid).hwmKiB / 1024, 1)
          })`
        ).join(", "),
    );
  } finally {
    await Promise.all(Object.values(mcas).map((m) => m.stop()));
  }
}

async function watchSection(
  ctx: Ctx,
  o: { watches: number; rounds: number; rate: number },
) {
  const { watches, rounds } = o;
  const names = Object.keys(VARIANTS);
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? names : [...names].reverse();
    for (const n of order) {
      const mca = await start(ctx, n, `watch-${i}`);
      try {
        const r = await runWatches({
          label: `${n}-${i}`,
          upstream: ctx.upstream,
          port: mca.port,
          caPem: mca.appCaPem,
          token: "bench-app-placeholder",
          count: watches,
          rate: o.rate,
          durationS: Math.max(10, 100 / o.rate),
          padBytes: 600,
          proxyPid: mca.pid,
          dir: ctx.dir,
        });
        console.log(
          `watches ${watches} ${n} round ${
            i + 1
          }: idle ${r.rssIdleMiB}, open ${r.rssOpenMiB}, peak ${r.rssPeakMiB}, after ${r.rssAfterMiB} MiB (HWM ${r.hwmMiB}); ${r.eventsDelivered}/${r.eventsExpected} events, p50 ${r.p50Ms} ms p99 ${r.p99Ms} ms`,
        );
      } finally {
        await mca.stop();
      }
    }
  }
}

async function main(): Promise<void> {
  const flags = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "5" },
      seconds: { type: "string", default: "6" },
      watches: { type: "string", default: "1000" },
      "watch-rounds": { type: "string", default: "2" },
      only: { type: "string", default: "cpu,watch" },
      /** Events per second in the watch section (each reaches every watch). */
      "watch-rate": { type: "string", default: "10" },
      /** A subset of the variants, comma-separated (e.g. default,semi8). */
      variants: { type: "string" },
    },
  }).values;
  const only = new Set(flags.only.split(","));
  if (flags.variants) {
    const keep = new Set(flags.variants.split(","));
    for (const n of Object.keys(VARIANTS)) if (!keep.has(n)) delete VARIANTS[n];
  }
  const bench = await startBenchUpstream("v8-flags");
  try {
    const ctx: Ctx = bench;
    if (only.has("cpu")) {
      await cpuSection(ctx, Number(flags.rounds), Number(flags.seconds));
    }
    if (only.has("watch")) {
      await watchSection(ctx, {
        watches: Number(flags.watches),
        rounds: Number(flags["watch-rounds"]),
        rate: Number(flags["watch-rate"]),
      });
    }
  } finally {
    await bench.stop();
  }
}

if (import.meta.main) await main();
