/**
 * The cost of MCA's observability (issue 16): throughput with metrics on
 * against MCA with them off, same upstream, same run, cells interleaved
 * (off, on for each workload and concurrency) so that machine noise hits
 * both alike. A scraper reads /metrics once a second during the "on" cells,
 * as a (busy) Prometheus would.
 *
 * @module
 */

import {
  type Cell,
  type PathSpec,
  runMatrix,
  type Workload,
} from "./matrix.ts";
import { type McaTarget, startMca } from "./mca.ts";
import { round } from "./stats.ts";

/** One workload × concurrency: throughput off and on. */
export interface ObserveCost {
  feature: "metrics";
  workload: string;
  concurrency: number;
  offReqPerS: number;
  onReqPerS: number;
  /** on ÷ off; 0.97 = 3 % cost. */
  ratio: number;
}

/** Options of {@linkcode measureMetricsCost}. */
export interface CostOptions {
  target: McaTarget;
  dir: string;
  workloads: Workload[];
  concurrencies: number[];
  durationS: number;
  warmupS: number;
  token: string;
  log: (line: string) => void;
  retryAbovePct: number;
  retries: { left: number };
}

/** Runs mca twice (metrics off / on) and pairs the cells. */
export async function measureMetricsCost(
  options: CostOptions,
): Promise<{ cells: Cell[]; costs: ObserveCost[] }> {
  const { target, dir } = options;
  const off = await startMca(target, { dir, name: "mca-metrics-off" });
  const on = await startMca(target, {
    dir,
    name: "mca-metrics-on",
    metrics: true,
  });
  const path = (name: PathSpec["name"], m: typeof off): PathSpec => ({
    name,
    port: m.port,
    tls: true,
    ca: m.appCaPem,
    token: options.token,
    pids: () => [m.pid],
  });
  const scraper = setInterval(() => {
    if (on.metricsPort) {
      fetch(`http://127.0.0.1:${on.metricsPort}/metrics`)
        .then((r) => r.body?.cancel()).catch(() => {});
    }
  }, 1000);
  try {
    const cells = await runMatrix({
      upstream: "fake upstream (metrics off / on)",
      paths: [path("mca", off), path("mca-metrics", on)],
      workloads: options.workloads,
      concurrencies: options.concurrencies,
      durationS: options.durationS,
      warmupS: options.warmupS,
      dir,
      log: options.log,
      retryAbovePct: options.retryAbovePct,
      retries: options.retries,
    });
    await checkCounted(on.metricsPort);
    return { cells, costs: pair(cells) };
  } finally {
    clearInterval(scraper);
    await Promise.all([off.stop(), on.stop()]);
  }
}

/** The "on" mca really counted the load (else the ratio means nothing). */
async function checkCounted(port: number | undefined): Promise<void> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const counted = [...text.matchAll(/^mca_requests_total\{[^}]*\} (\S+)$/gm)]
    .reduce((s, m) => s + Number(m[1]), 0);
  if (!(counted > 0)) {
    throw new Error(`mca with metrics on counted no requests on :${port}`);
  }
}

function pair(cells: Cell[]): ObserveCost[] {
  const costs: ObserveCost[] = [];
  for (const on of cells.filter((c) => c.path === "mca-metrics")) {
    const off = cells.find((c) =>
      c.path === "mca" && c.workload === on.workload &&
      c.concurrency === on.concurrency
    );
    if (!off || off.reqPerS <= 0) continue;
    costs.push({
      feature: "metrics",
      workload: on.workload,
      concurrency: on.concurrency,
      offReqPerS: off.reqPerS,
      onReqPerS: on.reqPerS,
      ratio: round(on.reqPerS / off.reqPerS, 3),
    });
  }
  return costs;
}

/** The worst ratio, as the target (≤ 3 % cost) reads it. */
export function worstCost(costs: ObserveCost[]): ObserveCost | undefined {
  return costs.reduce<ObserveCost | undefined>(
    (w, c) => (!w || c.ratio < w.ratio ? c : w),
    undefined,
  );
}
