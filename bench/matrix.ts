/**
 * The load matrix for one upstream: every path (direct, mca, kubectl proxy,
 * nginx) × workload (small GET, ~1 MB LIST) × concurrency, interleaved so
 * that slow drifts of the machine hit every path alike. Also the CPU time
 * each proxy process used per request, and each proxy's RSS afterwards.
 *
 * @module
 */

import { join } from "node:path";
import { getOnce } from "./client.ts";
import { type LoadResult, runH2load } from "./h2load.ts";
import { cpuSeconds, memory } from "./procs.ts";
import { foreignPercent, loadSnapshot } from "./machine_load.ts";
import { round } from "./stats.ts";

/** How one path is reached. */
export interface PathSpec {
  name:
    | "direct"
    | "mca"
    | "mca-metrics"
    | "mca-tracing-100"
    | "mca-tracing-1"
    | "mca-control"
    | "kubectl-proxy"
    | "deno-relay"
    | "nginx";
  port: number;
  /** HTTPS (false: plain HTTP, kubectl proxy's client side). */
  tls: boolean;
  /** CA to verify the sanity check with (h2load itself does not verify). */
  ca?: string;
  /** Token the client sends (the real one for direct, any for proxies). */
  token?: string;
  /** Processes whose CPU counts as this path's cost (none for direct). */
  pids(): number[];
}

/** A workload: the request path. */
export interface Workload {
  name: "GET" | "LIST";
  path: string;
  /** Expected body size, for the sanity check (±20 %). */
  approxBytes: number;
}

/** One measured cell. */
export interface Cell extends LoadResult {
  upstream: string;
  path: string;
  workload: string;
  concurrency: number;
  /** reqPerS ÷ direct's reqPerS in the same cell position. */
  ratioToDirect?: number;
  /** CPU time of the proxy process(es) per request, µs. */
  proxyCpuUsPerReq?: number;
  /** Share of the machine used by processes not of this run, %. */
  foreignPct: number;
  /** Measured again because another job loaded the machine. */
  retried?: boolean;
}

/** Options of {@linkcode runMatrix}. */
export interface MatrixOptions {
  upstream: string;
  paths: PathSpec[];
  workloads: Workload[];
  concurrencies: number[];
  durationS: number;
  warmupS: number;
  dir: string;
  log: (line: string) => void;
  /**
   * Re-measure a cell once when others used more than this share of the
   * machine (%), keeping the less disturbed run; `retries.left` bounds it.
   */
  retryAbovePct: number;
  retries: { left: number };
}

/** Checks each path answers each workload with a 200 of the right size. */
export async function sanityCheck(
  paths: PathSpec[],
  workloads: Workload[],
): Promise<void> {
  for (const p of paths) {
    for (const w of workloads) {
      const got = await getOnce(p.port, w.path, {
        ca: p.tls ? p.ca ?? "" : undefined,
        token: p.token,
        keepBody: false,
      });
      if (got.status !== 200) {
        throw new Error(
          `${p.name} ${w.name} ${w.path}: status ${got.status} (want 200)`,
        );
      }
      if (Math.abs(got.bytes - w.approxBytes) > w.approxBytes * 0.2) {
        throw new Error(
          `${p.name} ${w.name}: ${got.bytes} bytes, expected ~${w.approxBytes}`,
        );
      }
    }
  }
}

/** Runs every cell; returns them in a stable order. */
export async function runMatrix(options: MatrixOptions): Promise<Cell[]> {
  const cells: Cell[] = [];
  for (const w of options.workloads) {
    for (const c of options.concurrencies) {
      const row: Cell[] = [];
      for (const p of options.paths) {
        let cell = await measureCell(options, p, w, c);
        if (
          cell.foreignPct > options.retryAbovePct && options.retries.left > 0
        ) {
          options.retries.left--;
          options.log(
            `  (others used ${cell.foreignPct}% of the machine: measuring ${p.name} again)`,
          );
          const again = await measureCell(options, p, w, c);
          again.retried = true;
          if (again.foreignPct < cell.foreignPct) cell = again;
          else cell.retried = true;
        }
        row.push(cell);
        options.log(
          `  ${options.upstream} ${w.name} c=${c} ${p.name}: ${cell.reqPerS} req/s p50 ${cell.p50Ms} ms p99 ${cell.p99Ms} ms, others ${cell.foreignPct}%${
            cell.error ? ` ERROR ${cell.error}` : ""
          }`,
        );
      }
      const direct = row.find((x) => x.path === "direct");
      for (const x of row) {
        if (direct && direct.reqPerS > 0) {
          x.ratioToDirect = round(x.reqPerS / direct.reqPerS, 2);
        }
      }
      cells.push(...row);
    }
  }
  return cells;
}

async function measureCell(
  options: MatrixOptions,
  p: PathSpec,
  w: Workload,
  c: number,
): Promise<Cell> {
  const scheme = p.tls ? "https" : "http";
  const headers: Record<string, string> = {
    // Same bytes on every path: no one compresses (kubectl proxy's Go
    // transport would otherwise ask the upstream for gzip itself).
    "accept-encoding": "identity",
  };
  if (p.token) headers.authorization = `Bearer ${p.token}`;
  const pids = p.pids();
  const cpuBefore = cpuSeconds(pids);
  const before = loadSnapshot();
  const r = await runH2load({
    url: `${scheme}://127.0.0.1:${p.port}${w.path}`,
    concurrency: c,
    durationS: options.durationS,
    warmupS: options.warmupS,
    headers,
    logFile: join(options.dir, "h2load.log"),
  });
  const { foreignPct } = foreignPercent(before, loadSnapshot());
  const cpu = cpuSeconds(pids) - cpuBefore;
  // The CPU delta covers the warm-up too, like h2load's log.
  const requests = r.loggedRequests;
  return {
    upstream: options.upstream,
    path: p.name,
    workload: w.name,
    concurrency: c,
    ...r,
    reqPerS: round(r.reqPerS, 1),
    p50Ms: round(r.p50Ms, 3),
    p99Ms: round(r.p99Ms, 3),
    meanMs: round(r.meanMs, 3),
    mbPerS: round(r.mbPerS, 1),
    proxyCpuUsPerReq: pids.length && requests > 0
      ? round(cpu / requests * 1e6, 0)
      : undefined,
    foreignPct,
  };
}

/** RSS of each proxy after its load, MiB. */
export function rssAfter(paths: PathSpec[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of paths) {
    const pids = p.pids();
    if (pids.length === 0) continue;
    let kib = 0;
    for (const pid of pids) {
      try {
        kib += memory(pid).rssKiB;
      } catch {
        // gone
      }
    }
    out[p.name] = round(kib / 1024, 1);
  }
  return out;
}
