/**
 * Paired CPU cost of governance and observability, for a machine too busy
 * for throughput ratios: every mca variant is loaded AT THE SAME TIME (one
 * h2load each, same concurrency, same fake upstream), so whatever else the
 * machine runs hits all of them alike, and each one's CPU time (user+sys
 * from /proc/<pid>/stat) is divided by the requests it served. Each round
 * gives every variant's CPU per request ÷ the mean of the two all-off
 * mcas' in that same round; the second
 * all-off mca ÷ the first is the A/A control of that pairing.
 *
 *   deno run -A bench/cpu_ab.ts [--rounds 5] [--seconds 6] [-c 16]
 *                               [--rate 200] [--main path/to/main.ts]
 *
 * `--rate N` gives every variant the same N calls per second (h2load
 * `--rps`), so a slower variant is not also served in smaller batches: in
 * the closed loop, the variant that falls behind on a crowded machine gets
 * fewer calls per wake-up and so more CPU per call, which widens the very
 * differences being measured.
 *
 * Variants: `off`, `off-b` (A/A), `governance` (the 100-rule call policy of
 * `governance.ts` + audit at Metadata to a file), `metrics` (/metrics
 * scraped every 15 s), `tracing-1` (1 % sampled, OTLP protobuf to a
 * loopback sink).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startControlled } from "./control.ts";
import { runH2load } from "./h2load.ts";
import { cpuSeconds, stopAll } from "./procs.ts";
import { type Mca, startMca, useMain, writeFakeSaDir } from "./mca.ts";
import {
  type Variant,
  variantOptions,
  VARIANTS,
  writeGovernanceFiles,
} from "./variants.ts";
import { SCRAPE_EVERY_MS, startSpanSink } from "./observe_cost.ts";
import { median, round } from "./stats.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const PATH = "/api/v1/namespaces/default/configmaps/bench";
async function startVariants(dir: string, upstream: { port: number }) {
  const target = {
    realSaDir: join(dir, "real-sa"),
    host: "127.0.0.1",
    port: upstream.port,
  };
  const sink = await startSpanSink();
  await writeGovernanceFiles(dir);
  const mcas = {} as Record<Variant, Mca>;
  for (const v of VARIANTS) {
    mcas[v] = await startMca(
      target,
      variantOptions(v, { dir, sinkPort: sink.port }),
    );
  }
  return { mcas, sink };
}

function shuffled<T>(list: T[]): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** One round: all variants under load at once; CPU µs per request each. */
async function round1(
  mcas: Record<Variant, Mca>,
  opts: { c: number; seconds: number; dir: string; rate?: number },
): Promise<Record<Variant, { cpuUs: number; reqPerS: number }>> {
  // a new order each round: whichever load starts first got a steady edge
  // of a few % (the A/A pair differed by ×0.97 in order, 8 rounds)
  const names = shuffled(Object.keys(mcas) as Variant[]);
  const before = names.map((n) => cpuSeconds([mcas[n].pid]));
  const results = await Promise.all(names.map((n) =>
    runH2load({
      url: `https://127.0.0.1:${mcas[n].port}${PATH}`,
      concurrency: opts.c,
      durationS: opts.seconds,
      warmupS: 1,
      headers: {
        "accept-encoding": "identity",
        authorization: "Bearer bench-app-placeholder",
      },
      logFile: join(opts.dir, `h2load-${n}.log`),
      rps: opts.rate === undefined ? undefined : opts.rate / opts.c,
    })
  ));
  const out = {} as Record<Variant, { cpuUs: number; reqPerS: number }>;
  names.forEach((n, i) => {
    const cpu = cpuSeconds([mcas[n].pid]) - before[i];
    const r = results[i];
    if (r.error) throw new Error(`${n}: ${r.error}`);
    out[n] = { cpuUs: cpu * 1e6 / r.loggedRequests, reqPerS: r.reqPerS };
  });
  return out;
}

/** CPU of one scrape, the mean of 20 in a row (what SCRAPE_EVERY_MS spreads). */
async function scrapeCpuMs(mca: Mca): Promise<number> {
  const before = cpuSeconds([mca.pid]);
  for (let i = 0; i < 20; i++) {
    await (await fetch(`http://127.0.0.1:${mca.metricsPort}/metrics`)).text();
  }
  return round((cpuSeconds([mca.pid]) - before) * 1000 / 20, 2);
}

async function main(): Promise<void> {
  const flags = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "5" },
      seconds: { type: "string", default: "6" },
      c: { type: "string", short: "c", default: "16" },
      /** Calls per second for each variant (open loop); closed loop if absent. */
      rate: { type: "string" },
      /** Another copy of mca (e.g. an older commit under tmp/). */
      main: { type: "string" },
    },
  }).values;
  if (flags.main) useMain(flags.main);
  const dir = join(ROOT, "tmp", "bench", `cpu-ab-${Date.now()}`);
  await Deno.mkdir(dir, { recursive: true });
  const upstream = await startControlled(
    "fake-upstream",
    fileURLToPath(new URL("./upstream_proc.ts", import.meta.url)),
    ["bench-real-sa-token"],
    join(dir, "fake-upstream"),
  );
  let scraper: ReturnType<typeof setInterval> | undefined;
  try {
    await writeFakeSaDir(
      join(dir, "real-sa"),
      "bench-real-sa-token",
      String(upstream.ready.caPem),
    );
    const { mcas, sink } = await startVariants(dir, {
      port: Number(upstream.ready.port),
    });
    scraper = setInterval(() => {
      fetch(`http://127.0.0.1:${mcas.metrics.metricsPort}/metrics`)
        .then((r) => r.body?.cancel()).catch(() => {});
    }, SCRAPE_EVERY_MS);
    const opts = {
      c: Number(flags.c),
      seconds: Number(flags.seconds),
      dir,
      rate: flags.rate === undefined ? undefined : Number(flags.rate),
    };
    await round1(mcas, { ...opts, seconds: 2 }); // warm-up, discarded
    // what each costs with no calls (timers, the scrape): spread over the
    // calls of a round, it is part of its CPU per request
    const names = Object.keys(mcas) as Variant[];
    const idle0 = names.map((n) => cpuSeconds([mcas[n].pid]));
    await new Promise((r) => setTimeout(r, 5000));
    console.log(
      "idle CPU ms/s: " +
        names.map((n, i) =>
          `${n} ${round((cpuSeconds([mcas[n].pid]) - idle0[i]) * 1000 / 5, 1)}`
        ).join(", "),
    );
    console.log(
      `one /metrics scrape: ${await scrapeCpuMs(mcas.metrics)} ms CPU`,
    );
    const ratios: Record<string, number[]> = {};
    for (let i = 1; i <= Number(flags.rounds); i++) {
      const r = await round1(mcas, opts);
      // the two all-off mcas together are the baseline; off-b ÷ off is the
      // A/A control (one of them alone carried a bias of its own in a run)
      const base = (r.off.cpuUs + r["off-b"].cpuUs) / 2;
      const line = Object.entries(r).map(([n, v]) => {
        const ratio = n === "off-b"
          ? v.cpuUs / r.off.cpuUs
          : n === "off"
          ? 1
          : v.cpuUs / base;
        (ratios[n] ??= []).push(ratio);
        return `${n} ${round(v.cpuUs, 0)} µs/req (×${round(ratio, 3)}, ${
          round(v.reqPerS, 0)
        } req/s)`;
      }).join("; ");
      console.log(`round ${i} c=${opts.c}: ${line}`);
    }
    for (const [n, list] of Object.entries(ratios)) {
      console.log(
        `${n}: CPU/req ÷ ${
          n === "off-b" ? "off (A/A)" : "mean of off, off-b"
        } median ×${round(median(list), 3)}, range ×${
          round(Math.min(...list), 3)
        }–×${round(Math.max(...list), 3)} over ${list.length} rounds`,
      );
    }
    console.log(`OTLP sink: ${sink.exports} exports`);
    await sink.close();
  } finally {
    clearInterval(scraper);
    await upstream.stop();
    await stopAll();
  }
}

if (import.meta.main) await main();
