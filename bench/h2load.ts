/**
 * One load cell: h2load, HTTP/1.1 (`--h1`), fixed duration after a warm-up,
 * requests/s from h2load's summary and latency percentiles from its
 * per-request log (only requests started after the warm-up are counted).
 *
 * @module
 */

import { runCommand } from "./procs.ts";
import { percentile } from "./stats.ts";

/** What one cell asks for. */
export interface LoadSpec {
  url: string;
  concurrency: number;
  durationS: number;
  warmupS: number;
  headers: Record<string, string>;
  logFile: string;
  /** Requests per second per connection (h2load `--rps`); unbounded if absent. */
  rps?: number;
}

/** What one cell measured. */
export interface LoadResult {
  reqPerS: number;
  /** Requests completed in the measured window. */
  done: number;
  /** Responses with a status other than 2xx (h2load's status-code line). */
  non2xx: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** MB/s as h2load reports it (response bytes incl. headers). */
  mbPerS: number;
  /** Requests in h2load's log, warm-up included (for CPU per request). */
  loggedRequests: number;
  error?: string;
}

/** Runs h2load for one cell; never throws for a bad run (see `error`). */
export async function runH2load(spec: LoadSpec): Promise<LoadResult> {
  const args = [
    "--h1",
    "-c",
    String(spec.concurrency),
    "-t",
    "1",
    "-D",
    `${Math.round(spec.durationS * 1000)}ms`,
    `--warm-up-time=${Math.round(spec.warmupS * 1000)}ms`,
    `--log-file=${spec.logFile}`,
  ];
  if (spec.rps !== undefined) args.push(`--rps=${spec.rps}`);
  for (const [k, v] of Object.entries(spec.headers)) {
    args.push("-H", `${k}: ${v}`);
  }
  args.push(spec.url);
  try {
    await Deno.remove(spec.logFile);
  } catch {
    // none yet
  }
  const bound = (spec.durationS + spec.warmupS + 30) * 1000;
  const out = await runCommand("h2load", args, bound);
  const text = out.stdout;
  const result: LoadResult = {
    reqPerS: num(text, /finished in [^,]+, ([\d.]+) req\/s/),
    done: num(text, /requests: \d+ total, \d+ started, (\d+) done/),
    non2xx: num(text, /2xx, (\d+) 3xx/) + num(text, /3xx, (\d+) 4xx/) +
      num(text, /4xx, (\d+) 5xx/),
    failed: num(text, /(\d+) failed/) + num(text, /(\d+) errored/) +
      num(text, /(\d+) timeout/),
    p50Ms: NaN,
    p99Ms: NaN,
    meanMs: NaN,
    mbPerS: mbPerS(text),
    loggedRequests: 0,
  };
  if (out.code !== 0) {
    result.error = `h2load exited ${out.code}: ${
      (out.stderr || text).trim().split("\n").slice(-3).join(" | ")
    }`;
  } else if (result.done === 0) {
    result.error = `no request completed: ${
      text.trim().split("\n").slice(-6).join(" | ")
    }`;
  } else if (result.non2xx > 0 || result.failed > 0) {
    result.error =
      `${result.non2xx} non-2xx responses, ${result.failed} failed requests`;
  }
  Object.assign(result, await latencies(spec));
  return result;
}

function num(text: string, re: RegExp): number {
  const m = text.match(re);
  return m ? Number(m[1]) : 0;
}

function mbPerS(text: string): number {
  const m = text.match(/req\/s, ([\d.]+)([KMG]?)B\/s/);
  if (!m) return 0;
  // h2load's units are powers of 1024; report MiB/s.
  const toMiB: Record<string, number> = {
    "": 1 / 1048576,
    K: 1 / 1024,
    M: 1,
    G: 1024,
  };
  return Number(m[1]) * toMiB[m[2]];
}

/**
 * Percentiles from the log file: columns are start (µs since epoch), status,
 * duration (µs). Requests that started in the warm-up are dropped.
 */
async function latencies(
  spec: LoadSpec,
): Promise<
  { p50Ms: number; p99Ms: number; meanMs: number; loggedRequests: number }
> {
  const none = { p50Ms: NaN, p99Ms: NaN, meanMs: NaN, loggedRequests: 0 };
  let text: string;
  try {
    text = await Deno.readTextFile(spec.logFile);
  } catch {
    return none;
  }
  const starts: number[] = [];
  const durations: number[] = [];
  for (const line of text.split("\n")) {
    const [s, status, d] = line.split("\t");
    if (d === undefined || !status.startsWith("2")) continue;
    starts.push(Number(s));
    durations.push(Number(d));
  }
  if (starts.length === 0) return none;
  let first = Infinity;
  for (const s of starts) first = Math.min(first, s);
  const cut = first + spec.warmupS * 1e6;
  const measured = durations.filter((_, i) => starts[i] >= cut);
  const use = measured.length > 0 ? measured : durations;
  const sorted = Float64Array.from(use).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  await Deno.remove(spec.logFile).catch(() => {});
  return {
    p50Ms: percentile(sorted, 50) / 1000,
    p99Ms: percentile(sorted, 99) / 1000,
    meanMs: sum / sorted.length / 1000,
    loggedRequests: starts.length,
  };
}
