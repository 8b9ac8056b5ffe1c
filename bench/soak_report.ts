/**
 * The soak's verdict and its soak.md / soak.json (bench/soak.ts): RSS flat
 * (last third ÷ first third and the least-squares slope after warm-up),
 * upstream connections other than the watches flat, no failed call, no lost
 * watch event, the token rotation and the routing reload both seen.
 *
 * @module
 */

import { join } from "node:path";
import type { EventCount, Reload, Rotation } from "./soak_events.ts";
import { round } from "./stats.ts";

/** One reading of mca during the soak. */
export interface Sample {
  atS: number;
  rssMiB: number;
  /** Established mca → upstream connections, watches included. */
  upstreamConnections: number;
  /** Watches the upstream holds open (one connection each). */
  upstreamWatches: number;
  requests: number;
  /** Calls read to the end that did not get a 200 (or failed to connect). */
  failed: number;
}

/** Everything the report is made of. */
export interface SoakResult {
  args: Record<string, number | string>;
  samples: Sample[];
  /** Samples before this index were taken while the load ran. */
  loadEnd: number;
  events?: EventCount;
  rotation?: Rotation;
  reload?: Reload;
  machine: { foreignPct: number; stealPct: number };
  commit: string;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)];
}

/** Least-squares slope of y over x (0 with fewer than two points). */
export function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** The figures the verdict is made of. */
function figures(r: SoakResult, warmupS: number) {
  const load = r.samples.slice(0, r.loadEnd).filter((s) => s.atS >= warmupS);
  const third = Math.max(1, Math.floor(load.length / 3));
  const first = load.slice(0, third);
  const last = load.slice(-third);
  const other = (s: Sample) => s.upstreamConnections - s.upstreamWatches;
  const end = r.samples.at(-1)!;
  return {
    rssRatio: round(
      median(last.map((s) => s.rssMiB)) / median(first.map((s) => s.rssMiB)),
      3,
    ),
    slopeMiBPerMin: round(
      slope(load.map((s) => ({ x: s.atS / 60, y: s.rssMiB }))),
      3,
    ),
    rssMin: Math.min(...load.map((s) => s.rssMiB)),
    rssMax: Math.max(...load.map((s) => s.rssMiB)),
    connFirst: Math.max(...first.map(other)),
    connLast: Math.max(...last.map(other)),
    connIdle: other(end),
    requests: end.requests,
    failed: end.failed,
  };
}

/** Writes soak.md and soak.json; resolves with the exit code (0 = pass). */
export async function report(r: SoakResult, out: string): Promise<number> {
  const clients = Number(r.args.clients);
  const f = figures(r, Number(r.args.warmupS));
  const flat = f.rssRatio <= 1.2 &&
    f.connLast <= Math.max(f.connFirst, clients) * 1.5 &&
    f.connIdle <= clients * 2;
  const ev = r.events;
  const eventsOk = ev === undefined ||
    (ev.lost === 0 && ev.reopened === 0 && ev.malformed === 0);
  const pass = flat && f.failed === 0 && eventsOk &&
    (r.rotation?.ok ?? true) && (r.reload?.ok ?? true);
  const lines = [
    `# mca soak (${r.args.minutes} min, ${clients} call clients at ≤ ${r.args.rate}/s, ` +
    `${ev?.watches ?? 0} watches, at ${r.commit})`,
    "",
    "| s | requests | failed | RSS MiB | mca → upstream connections | of which watches |",
    "|---|---|---|---|---|---|",
    ...r.samples.map((s) =>
      `| ${s.atS} | ${s.requests} | ${s.failed} | ${s.rssMiB} | ` +
      `${s.upstreamConnections} | ${s.upstreamWatches} |`
    ),
    "",
    `- calls: ${f.failed} of ${f.requests} failed`,
    `- RSS after ${r.args.warmupS} s warm-up: ${f.rssMin}–${f.rssMax} MiB, ` +
    `slope ${f.slopeMiBPerMin} MiB/min (least squares), last third ÷ first ` +
    `third (medians) ${f.rssRatio}`,
    `- upstream connections other than watches: first third max ` +
    `${f.connFirst}, last third max ${f.connLast}, after idle ${f.connIdle}`,
    ev === undefined
      ? "- watches: none"
      : `- watch events: ${ev.pushed} pushed at ` +
        `${ev.pushRatePerS}/s to ${ev.watches} watches = ${ev.expected} expected, ` +
        `${ev.received} received (parsed, distinct per watch), ${ev.lost} lost ` +
        `(${ev.watchesWithLoss} watches short), ${ev.duplicates} duplicates, ` +
        `${ev.outOfOrder} out of order, ${ev.malformed} malformed; upstream wrote ` +
        `${ev.upstreamWrites} (fewest watches open at a push: ${ev.minUpstreamWatches}); ` +
        `watches ended ${ev.ended}, re-opened ${ev.reopened}; delivery p50 ` +
        `${ev.p50Ms} ms, p99 ${ev.p99Ms} ms, max ${ev.maxMs} ms`,
    r.rotation === undefined
      ? "- token rotation: none"
      : `- token rotation at ` +
        `${r.rotation.atS} s: first upstream request with the new token ` +
        `${r.rotation.newTokenSeenMs} ms after the ..data swap; ` +
        `${r.rotation.newTokenRequests} requests with it; ` +
        `${r.rotation.oldAfterRetire} with the old one after it was retired`,
    r.reload === undefined ? "- routing reload: none" : `- routing reload at ` +
      `${r.reload.atS} s: "routing configuration loaded" (${r.reload.rules} rule) ` +
      `${r.reload.appliedMs} ms after the ..data swap; ` +
      `mca_routing_reloads_total loaded +${r.reload.loadedDelta}, rejected ` +
      `+${r.reload.rejectedDelta}`,
    `- machine: other jobs used ${r.machine.foreignPct} % of it ` +
    `(steal ${r.machine.stealPct} %)`,
    "",
    `Verdict: RSS and connections ${flat ? "FLAT" : "**GROWING**"}; ` +
    `${pass ? "PASS" : "**FAIL**"}`,
    "",
  ];
  await Deno.writeTextFile(join(out, "soak.md"), lines.join("\n"));
  await Deno.writeTextFile(
    join(out, "soak.json"),
    JSON.stringify({ ...r, ...f, flat, pass }, null, 2),
  );
  console.log(lines.join("\n"));
  return pass ? 0 : 1;
}
