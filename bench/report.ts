/**
 * Targets of issue 5 checked against the measurements, and the markdown
 * report.
 *
 * @module
 */

import { renderPerPodCost } from "./per_pod.ts";
import type { Cell } from "./matrix.ts";
import type { StartupResult } from "./startup.ts";
import type { StreamResult } from "./stream.ts";
import type { MachineInfo } from "./tools.ts";
import type { WatchResult } from "./watch.ts";
import {
  COST_TARGETS,
  type ObserveCost,
  type ObserveFeature,
  worstCost,
} from "./observe_cost.ts";

const FEATURE_LABEL: Record<ObserveFeature, string> = {
  metrics: "metrics on",
  "tracing-1": "tracing at 1 % sampling",
  "tracing-100": "tracing at 100 % sampling",
};
import { round } from "./stats.ts";
import type { InstructionCost } from "./instructions.ts";

/** Everything one run measured. */
export interface Results {
  mode: "full" | "quick";
  machine: MachineInfo;
  settings: Record<string, unknown>;
  startup?: StartupResult;
  load: Cell[];
  rssAfterLoadMiB: Record<string, Record<string, number>>;
  /** Share of the machine other jobs used per section, %. */
  contention: Record<string, { foreignPct: number; stealPct: number }>;
  retriesUsed: number;
  watches: WatchResult[];
  streams: StreamResult[];
  /** Issue 16: throughput with metrics or tracing on ÷ all off. */
  observeCost?: ObserveCost[];
  /** Issues 15 and 16: instructions per call of each variant ÷ all off. */
  instructions?: InstructionCost[];
  targets: Target[];
  notes: string[];
  errors: string[];
  durationS: number;
}

/** One target of the issue with its verdict. */
export interface Target {
  target: string;
  measured: string;
  met: boolean | null;
}

const fmt = (x: number | undefined, d = 2) =>
  x === undefined || Number.isNaN(x) ? "—" : String(round(x, d));

function cell(
  load: Cell[],
  upstream: string,
  path: string,
  workload: string,
  c: number,
) {
  return load.find((x) =>
    x.upstream === upstream && x.path === path && x.workload === workload &&
    x.concurrency === c
  );
}

/** Evaluates every target of the issue. */
export function evaluateTargets(r: Omit<Results, "targets">): Target[] {
  const targets: Target[] = [];
  const upstreams = [...new Set(r.load.map((c) => c.upstream))];
  for (const up of upstreams) {
    const mine = r.load.filter((c) => c.upstream === up && c.path === "mca");
    let worstKp: { ratio: number; where: string } | undefined;
    let worstDirect: { ratio: number; where: string } | undefined;
    for (const m of mine) {
      const kp = cell(r.load, up, "kubectl-proxy", m.workload, m.concurrency);
      const where = `${m.workload} c=${m.concurrency}`;
      if (kp && kp.reqPerS > 0) {
        const ratio = m.reqPerS / kp.reqPerS;
        if (!worstKp || ratio < worstKp.ratio) worstKp = { ratio, where };
      }
      if (m.ratioToDirect !== undefined) {
        if (!worstDirect || m.ratioToDirect < worstDirect.ratio) {
          worstDirect = { ratio: m.ratioToDirect, where };
        }
      }
    }
    if (worstKp) {
      targets.push({
        target: `${up}: mca throughput ≥ 1.0× kubectl proxy (every cell)`,
        measured: `worst ${fmt(worstKp.ratio)}× (${worstKp.where})`,
        met: worstKp.ratio >= 1.0,
      });
    }
    if (worstDirect) {
      targets.push({
        target: `${up}: mca throughput ≥ 0.8× direct (every cell)`,
        measured: `worst ${fmt(worstDirect.ratio)}× (${worstDirect.where})`,
        met: worstDirect.ratio >= 0.8,
      });
    }
    const m1 = cell(r.load, up, "mca", "GET", 1);
    const d1 = cell(r.load, up, "direct", "GET", 1);
    if (m1 && d1) {
      const p50 = m1.p50Ms - d1.p50Ms;
      const p99 = m1.p99Ms - d1.p99Ms;
      targets.push({
        target: `${up}: added p50 latency ≤ 0.5 ms (GET, c=1)`,
        measured: `+${fmt(p50, 3)} ms (${fmt(m1.p50Ms, 3)} vs ${
          fmt(d1.p50Ms, 3)
        })`,
        met: p50 <= 0.5,
      });
      targets.push({
        target: `${up}: added p99 latency ≤ 2 ms (GET, c=1)`,
        measured: `+${fmt(p99, 3)} ms (${fmt(m1.p99Ms, 3)} vs ${
          fmt(d1.p99Ms, 3)
        })`,
        met: p99 <= 2,
      });
    }
  }
  if (r.startup) {
    const f = r.startup.medianFresh;
    const s = r.startup.medianRestart;
    targets.push({
      target: "idle RSS ≤ 60 MB",
      measured: `${fmt(f.idleRssMiB, 1)} MiB (median of ${r.startup.runs})`,
      met: f.idleRssMiB <= 60,
    });
    targets.push({
      target: "start-up to ready ≤ 300 ms (first start, CA generated)",
      measured: `${fmt(f.readyMs, 0)} ms to ready, ${
        fmt(f.firstRequestMs, 0)
      } ms to first response (median of ${r.startup.runs})`,
      met: f.readyMs <= 300,
    });
    targets.push({
      target: "start-up to ready ≤ 300 ms (restart, CA kept)",
      measured: `${fmt(s.readyMs, 0)} ms to ready, ${
        fmt(s.firstRequestMs, 0)
      } ms to first response (median of ${r.startup.runs})`,
      met: s.readyMs <= 300,
    });
  }
  for (const w of r.watches.filter((w) => w.rssPeakMiB !== undefined)) {
    const peak = Math.max(w.rssPeakMiB ?? 0, w.rssOpenMiB ?? 0);
    targets.push({
      target: `${w.watches} watches ≤ 150 MB RSS (${w.label})`,
      measured: `peak ${fmt(peak, 1)} MiB during ${w.rate} events/s`,
      met: peak <= 150,
    });
  }
  for (const feature of ["metrics", "tracing-1", "tracing-100"] as const) {
    const target = observeTarget(r.observeCost ?? [], feature);
    if (target) targets.push(target);
  }
  for (const s of r.streams.filter((s) => s.growthMiB !== undefined)) {
    targets.push({
      target: `200 MB LIST ≤ 20 MB RSS growth (${s.label})`,
      measured: `VmHWM − idle = ${fmt(s.growthMiB, 1)} MiB${
        s.complete ? "" : " (INCOMPLETE)"
      }`,
      met: (s.growthMiB ?? Infinity) <= 20 && s.complete,
    });
  }
  return targets;
}

/**
 * The verdict on one feature's cost target (issue 16): the worst cell's
 * throughput cost against its bound, left open ("too noisy to tell") when
 * two identical mcas (the A/A control) already differed by more than the
 * bound, as the governance target does.
 */
function observeTarget(costs: ObserveCost[], feature: ObserveFeature) {
  const worst = worstCost(costs, feature);
  if (!worst) return undefined;
  const mine = costs.filter((c) => c.feature === feature);
  const noise = Math.max(...mine.map((c) => Math.abs(1 - c.aaRatio)));
  const cost = (1 - worst.ratio) * 100;
  const cpu = worst.offCpuUsPerReq && worst.onCpuUsPerReq
    ? `; CPU/req ${fmt(worst.offCpuUsPerReq, 0)} → ${
      fmt(worst.onCpuUsPerReq, 0)
    } µs`
    : "";
  const bound = COST_TARGETS[feature];
  const measured = `${fmt(cost, 1)} % (c=${worst.concurrency}: ${
    fmt(worst.onReqPerS, 0)
  } vs ${fmt(worst.offReqPerS, 0)} req/s${cpu}); A/A noise ±${
    fmt(noise * 100, 1)
  } %`;
  const target = `${FEATURE_LABEL[feature]}: ${
    bound === undefined
      ? "cost (no target)"
      : `≤ ${bound * 100} % throughput cost`
  } (GET, worst concurrency)`;
  if (bound === undefined) return { target, measured, met: null };
  if (!(noise <= bound)) {
    return { target, measured: `${measured}: too noisy to tell`, met: null };
  }
  return { target, measured, met: cost <= bound * 100 };
}

/** The markdown report. */
export function renderMarkdown(r: Results): string {
  const m = r.machine;
  const lines: string[] = [];
  lines.push(`# mca benchmark (${r.mode} run, ${m.date.slice(0, 10)})`, "");
  lines.push(
    `Measured ${m.date} on a ${m.cores}-core shared machine (${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel}); ` +
      `load average at start ${m.loadavgStart.join(" / ")}, at end ${
        (m.loadavgEnd ?? []).join(" / ")
      }. Load generator, proxies and upstream all share these ${m.cores} cores. Run took ${
        Math.round(r.durationS)
      } s.`,
    "",
  );
  lines.push(
    "Versions: " +
      Object.entries(m.versions).filter(([k]) => k !== "kubectlPath").map((
        [k, v],
      ) => `${k} ${v}`).join("; ") + ".",
    "",
  );

  lines.push(
    "## Targets",
    "",
    "| target | measured | verdict |",
    "|---|---|---|",
  );
  for (const t of r.targets) {
    lines.push(
      `| ${t.target} | ${t.measured} | ${
        t.met === null ? "—" : t.met ? "MET" : "**MISSED**"
      } |`,
    );
  }
  lines.push("");

  if (r.observeCost?.length) {
    lines.push(
      "## Cost of metrics and tracing (fake upstream, same run)",
      "",
      "Five mca processes, cells interleaved: all off; `/metrics` on (scraped every 15 s); " +
        "tracing sampled at 100 % and at 1 % (OTLP/HTTP protobuf to a loopback sink); " +
        "a second all-off mca as the A/A control. on ÷ off = throughput against the all-off mca " +
        "in the same cell position; a verdict is left open when the control differs by more than the target.",
      "",
      "| feature | workload | c | off req/s | on req/s | on ÷ off | A/A (noise) | mca CPU µs/req off | on |",
      "|---|---|---|---|---|---|---|---|---|",
      ...r.observeCost.map((c) =>
        `| ${FEATURE_LABEL[c.feature]} | ${c.workload} | ${c.concurrency} | ${
          fmt(c.offReqPerS, 0)
        } | ${fmt(c.onReqPerS, 0)} | ${fmt(c.ratio, 3)} | ${
          fmt(c.aaRatio, 3)
        } | ${fmt(c.offCpuUsPerReq, 0)} | ${fmt(c.onCpuUsPerReq, 0)} |`
      ),
      "",
    );
  }
  for (const up of [...new Set(r.load.map((c) => c.upstream))]) {
    lines.push(
      `## Load: ${up}`,
      "",
      "h2load, HTTP/1.1, keep-alive, " +
        `${r.settings.durationS} s per cell after ${r.settings.warmupS} s warm-up. ` +
        "×direct = req/s ÷ direct's. CPU = proxy process CPU time per request (warm-up included). " +
        "others = share of the machine used by jobs outside this run during the cell (re-measured once above " +
        `${r.settings.retryAbovePct}%, marked *).`,
      "",
      "| workload | c | path | req/s | ×direct | p50 ms | p99 ms | CPU µs/req | MiB/s | others % |",
      "|---|---|---|---|---|---|---|---|---|---|",
    );
    for (const c of r.load.filter((x) => x.upstream === up)) {
      lines.push(
        `| ${c.workload} | ${c.concurrency} | ${c.path} | ${
          fmt(c.reqPerS, 0)
        } | ${fmt(c.ratioToDirect)} | ${fmt(c.p50Ms, 3)} | ${
          fmt(c.p99Ms, 3)
        } | ${c.proxyCpuUsPerReq ?? "—"} | ${
          fmt(c.mbPerS, 0)
        } | ${c.foreignPct}${c.retried ? "*" : ""} |${
          c.error ? ` ERROR: ${c.error}` : ""
        }`,
      );
    }
    const rss = r.rssAfterLoadMiB[up];
    if (rss) {
      lines.push(
        "",
        "RSS after this load: " +
          Object.entries(rss).map(([k, v]) => `${k} ${v} MiB`).join(", ") +
          ".",
      );
    }
    lines.push("");
  }

  lines.push(...renderPerPodCost(r.load, r.rssAfterLoadMiB));

  if (r.watches.length) {
    lines.push(
      "## Watches (fake upstream)",
      "",
      "Latency = upstream write → client read of each event, per watch; the upstream writes to the watches one after another, so the same spread appears on the direct path.",
      "",
      "| path | watches | events/s | delivered / expected | p50 ms | p90 ms | p99 ms | max ms | RSS idle → open → peak MiB |",
      "|---|---|---|---|---|---|---|---|---|",
    );
    for (const w of r.watches) {
      lines.push(
        `| ${w.label} | ${w.watches} | ${w.rate} | ${w.eventsDelivered} / ${w.eventsExpected} | ${
          fmt(w.p50Ms)
        } | ${fmt(w.p90Ms)} | ${fmt(w.p99Ms)} | ${fmt(w.maxMs, 1)} | ${
          w.rssIdleMiB === undefined
            ? "—"
            : `${w.rssIdleMiB} → ${w.rssOpenMiB} → ${w.rssPeakMiB}`
        } |`,
      );
    }
    lines.push("");
  }

  if (r.streams.length) {
    lines.push(
      "## 200 MB LIST (fake upstream, chunked)",
      "",
      "| run | bytes | s | MiB/s | complete | RSS idle MiB | VmHWM MiB | growth MiB |",
      "|---|---|---|---|---|---|---|---|",
    );
    for (const s of r.streams) {
      lines.push(
        `| ${s.label} | ${s.bytes} | ${s.seconds} | ${s.mibPerS} | ${
          s.complete ? "yes" : "NO"
        } | ${s.rssIdleMiB ?? "—"} | ${s.hwmMiB ?? "—"} | ${
          s.growthMiB ?? "—"
        } |`,
      );
    }
    lines.push("");
  }

  if (r.startup) {
    const s = r.startup;
    lines.push(
      "## Start-up (fake upstream)",
      "",
      `Median of ${s.runs} runs each, after one unmeasured warm-up. ready = spawn of \`deno run main.ts\` → its ready line; first response = → first successful TLS GET /version through it; self = mca's own startupMs; idle RSS read ${r.settings.idleWaitMs} ms after the first response.`,
      "",
      "| case | ready ms | first response ms | self ms | idle RSS MiB |",
      "|---|---|---|---|---|",
      `| first start (CA generated) | ${s.medianFresh.readyMs} | ${s.medianFresh.firstRequestMs} | ${s.medianFresh.selfStartupMs} | ${s.medianFresh.idleRssMiB} |`,
      `| restart (CA kept) | ${s.medianRestart.readyMs} | ${s.medianRestart.firstRequestMs} | ${s.medianRestart.selfStartupMs} | ${s.medianRestart.idleRssMiB} |`,
      "",
    );
  }

  const busy = Object.entries(r.contention);
  if (busy.length) {
    lines.push(
      "## Other jobs on the machine",
      "",
      "Share of the machine (all cores) used by processes outside this run, per section (load cells: see the tables):",
      "",
      busy.map(([k, v]) =>
        `${k} ${v.foreignPct}%${v.stealPct ? ` (steal ${v.stealPct}%)` : ""}`
      ).join("; ") + ".",
      `Load cells re-measured because of them: ${r.retriesUsed}.`,
      "",
    );
  }

  if (r.notes.length) {
    lines.push("## Notes", "", ...r.notes.map((n) => `- ${n}`), "");
  }
  if (r.errors.length) {
    lines.push("## Errors", "", ...r.errors.map((e) => `- ${e}`), "");
  }
  return lines.join("\n");
}
