/**
 * The cost of MCA's observability (issue 16): throughput with metrics on,
 * with tracing sampled at 100 % and at 1 %, each against MCA with both off —
 * five mca processes, same upstream, same run, cells interleaved (off,
 * metrics, tracing 100 %, tracing 1 %, and a second identical "off" mca as
 * an A/A control for each workload and concurrency) so that machine noise
 * hits all alike, and the control says how large that noise was: on a
 * shared 2-core machine it can exceed the 3 % being measured. The mca
 * process's CPU time per request is reported beside throughput, as the
 * steadier measure of the same cost. A scraper reads /metrics every
 * {@linkcode SCRAPE_EVERY_MS} during the run, as Prometheus would; the traced mcas export OTLP
 * protobuf (the default protocol) to a loopback sink in this process that
 * reads each body and answers 200, as a Collector agent next to the Pod
 * would.
 *
 * @module
 */

import { createServer, type Server } from "node:http";
import {
  type Cell,
  type PathSpec,
  runMatrix,
  type Workload,
} from "./matrix.ts";
import { type Mca, type McaTarget, startMca } from "./mca.ts";
import { round } from "./stats.ts";

/** What was switched on against the mca with everything off. */
export type ObserveFeature = "metrics" | "tracing-100" | "tracing-1";

/** One feature × workload × concurrency: throughput off and on. */
export interface ObserveCost {
  feature: ObserveFeature;
  workload: string;
  concurrency: number;
  offReqPerS: number;
  onReqPerS: number;
  /** on ÷ off; 0.97 = 3 % cost. */
  ratio: number;
  /** The A/A control ÷ off in the same cell position: the noise floor. */
  aaRatio: number;
  /** mca CPU time per request, µs, off and on. */
  offCpuUsPerReq?: number;
  onCpuUsPerReq?: number;
}

/** The cost target of each feature (issue 16), as a share of throughput. */
export const COST_TARGETS: Record<ObserveFeature, number | undefined> = {
  metrics: 0.03,
  "tracing-1": 0.05,
  "tracing-100": undefined,
};

/** Options of {@linkcode measureObserveCost}. */
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

/**
 * How often the benchmarks scrape /metrics: 15 s, the interval of
 * Prometheus' example configuration (its own default is 1 min; the
 * kube-prometheus PodMonitors use 30 s). One scrape costs an mca a few ms of
 * CPU; scraped every second, that fixed cost was counted against a few
 * hundred calls per second and dominated the per-call figure.
 */
export const SCRAPE_EVERY_MS = 15_000;

const PATH_OF: Record<ObserveFeature, PathSpec["name"]> = {
  metrics: "mca-metrics",
  "tracing-100": "mca-tracing-100",
  "tracing-1": "mca-tracing-1",
};

/** Runs the four mcas and pairs each feature's cells with the "off" ones. */
export async function measureObserveCost(
  options: CostOptions,
): Promise<{ cells: Cell[]; costs: ObserveCost[] }> {
  const { target, dir } = options;
  const sink = await startSpanSink();
  const traced = (ratio: string) => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sink.port}`,
    OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
    OTEL_TRACES_SAMPLER_ARG: ratio,
  });
  const mcas: Mca[] = [];
  const start = async (...args: Parameters<typeof startMca>) => {
    const m = await startMca(...args);
    mcas.push(m);
    return m;
  };
  const scraper = setInterval(() => {
    const port = mcas.find((m) => m.metricsPort)?.metricsPort;
    if (port) {
      fetch(`http://127.0.0.1:${port}/metrics`)
        .then((r) => r.body?.cancel()).catch(() => {});
    }
  }, SCRAPE_EVERY_MS);
  try {
    const off = await start(target, { dir, name: "mca-observe-off" });
    const control = await start(target, { dir, name: "mca-observe-off-b" });
    const metrics = await start(target, {
      dir,
      name: "mca-metrics-on",
      metrics: true,
    });
    const t100 = await start(target, {
      dir,
      name: "mca-tracing-100",
      env: traced("1"),
    });
    const t1 = await start(target, {
      dir,
      name: "mca-tracing-1",
      env: traced("0.01"),
    });
    const path = (name: PathSpec["name"], m: Mca): PathSpec => ({
      name,
      port: m.port,
      tls: true,
      ca: m.appCaPem,
      token: options.token,
      pids: () => [m.pid],
    });
    const cells = await runMatrix({
      upstream: "fake upstream (metrics / tracing off and on)",
      paths: [
        path("mca", off),
        path(PATH_OF.metrics, metrics),
        path(PATH_OF["tracing-100"], t100),
        path(PATH_OF["tracing-1"], t1),
        path("mca-control", control),
      ],
      workloads: options.workloads,
      concurrencies: options.concurrencies,
      durationS: options.durationS,
      warmupS: options.warmupS,
      dir,
      log: options.log,
      retryAbovePct: options.retryAbovePct,
      retries: options.retries,
    });
    await checkCounted(metrics.metricsPort);
    await checkExported(sink, options.log);
    return { cells, costs: pair(cells) };
  } finally {
    clearInterval(scraper);
    await Promise.all(mcas.map((m) => m.stop()));
    await sink.close();
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

/** The traced mcas really exported protobuf (else tracing cost nothing). */
async function checkExported(
  sink: SpanSink,
  log: (line: string) => void,
): Promise<void> {
  // the last spans leave within the exporter's 1 s flush period
  const deadline = Date.now() + 5_000;
  while (sink.exports === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  log(
    `OTLP sink: ${sink.exports} exports, ${round(sink.bytes / 1e6, 1)} MB, ` +
      `content types ${[...sink.types].join(", ")}`,
  );
  if (sink.exports === 0 || !sink.types.has("application/x-protobuf")) {
    throw new Error("the traced mcas exported no OTLP protobuf to the sink");
  }
}

/** A loopback OTLP/HTTP endpoint that reads each body and answers 200. */
export interface SpanSink {
  port: number;
  exports: number;
  bytes: number;
  types: Set<string>;
  close(): Promise<void>;
}

export function startSpanSink(): Promise<SpanSink> {
  const server: Server = createServer((req, res) => {
    sink.types.add(String(req.headers["content-type"]));
    req.on("data", (chunk: Uint8Array) => sink.bytes += chunk.length);
    req.on("end", () => {
      sink.exports++;
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  const sink: SpanSink = {
    port: 0,
    exports: 0,
    bytes: 0,
    types: new Set(),
    close: () => new Promise((r) => server.close(() => r())),
  };
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      sink.port = (server.address() as { port: number }).port;
      resolve(sink);
    });
  });
}

function pair(cells: Cell[]): ObserveCost[] {
  const costs: ObserveCost[] = [];
  const at = (path: string, like: Cell) =>
    cells.find((c) =>
      c.path === path && c.workload === like.workload &&
      c.concurrency === like.concurrency
    );
  for (const feature of Object.keys(PATH_OF) as ObserveFeature[]) {
    for (const on of cells.filter((c) => c.path === PATH_OF[feature])) {
      const off = at("mca", on);
      const control = at("mca-control", on);
      if (!off || off.reqPerS <= 0) continue;
      costs.push({
        feature,
        workload: on.workload,
        concurrency: on.concurrency,
        offReqPerS: off.reqPerS,
        onReqPerS: on.reqPerS,
        ratio: round(on.reqPerS / off.reqPerS, 3),
        aaRatio: round((control?.reqPerS ?? 0) / off.reqPerS, 3),
        offCpuUsPerReq: off.proxyCpuUsPerReq,
        onCpuUsPerReq: on.proxyCpuUsPerReq,
      });
    }
  }
  return costs;
}

/** The worst ratio of `feature`, as the targets read it. */
export function worstCost(
  costs: ObserveCost[],
  feature: ObserveFeature = "metrics",
): ObserveCost | undefined {
  return costs.filter((c) => c.feature === feature).reduce<
    ObserveCost | undefined
  >((w, c) => (!w || c.ratio < w.ratio ? c : w), undefined);
}
