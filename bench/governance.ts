/**
 * Governance cost (issue 15): throughput of mca with the audit log at
 * `Metadata` level for every call (and, once the policy half lands, a
 * 100-rule call policy: pass its flags in `onArgs`) against the same mca
 * with both off, in the same run, on the same fake upstream. Rounds
 * alternate off / on so a slow drift of the shared machine hits both alike;
 * the ratio is of the medians.
 *
 * @module
 */

import { join } from "node:path";
import { runH2load } from "./h2load.ts";
import { type Mca, type McaTarget, startMca } from "./mca.ts";
import { median, round } from "./stats.ts";

/** One measured workload × concurrency. */
export interface GovernanceResult {
  workload: string;
  concurrency: number;
  offReqPerS: number;
  onReqPerS: number;
  /** onReqPerS ÷ offReqPerS (1 = free). */
  ratio: number;
  rounds: number;
  /** Audit events the "on" mca wrote: proof that audit was really on. */
  auditEvents: number;
  /** Flags of the "on" mca. */
  onFlags: string[];
  error?: string;
}

/** Options of {@linkcode governanceSuite}. */
export interface GovernanceOptions {
  target: McaTarget;
  dir: string;
  log: (line: string) => void;
  path: string;
  token: string;
  concurrencies: number[];
  durationS: number;
  warmupS: number;
  rounds: number;
  /** More flags for the "on" mca (e.g. `--policy FILE`). */
  onArgs?: string[];
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
`;

/** Measures mca with audit (and policy) on vs off. */
export async function governanceSuite(
  options: GovernanceOptions,
): Promise<GovernanceResult[]> {
  const dir = join(options.dir, "governance");
  await Deno.mkdir(dir, { recursive: true });
  const policyFile = join(dir, "audit-policy.yaml");
  const auditLog = join(dir, "audit.log");
  await Deno.writeTextFile(policyFile, AUDIT_POLICY);
  const onFlags = [
    `--audit-policy=${policyFile}`,
    `--audit-log=${auditLog}`,
    "--audit-log-maxsize=1024",
    ...(options.onArgs ?? []),
  ];
  const off = await startMca(options.target, { dir, name: "mca-gov-off" });
  let on: Mca | undefined;
  try {
    on = await startMca(options.target, {
      dir,
      name: "mca-gov-on",
      args: onFlags,
    });
    const results: GovernanceResult[] = [];
    for (const c of options.concurrencies) {
      const r = await measure(options, { off, on, c, dir });
      results.push({ ...r, onFlags });
      options.log(
        `governance c=${c}: off ${r.offReqPerS} req/s, on ${r.onReqPerS} req/s (×${r.ratio})`,
      );
    }
    await on.stop();
    on = undefined;
    const events = await countLines(auditLog);
    for (const r of results) r.auditEvents = events;
    return results;
  } finally {
    await Promise.all([off.stop(), on?.stop()]);
  }
}

async function measure(
  options: GovernanceOptions,
  run: { off: Mca; on: Mca; c: number; dir: string },
): Promise<Omit<GovernanceResult, "onFlags">> {
  const rates = { off: [] as number[], on: [] as number[] };
  let error: string | undefined;
  // Round 0 warms both processes up (JIT, TLS sessions) and is discarded;
  // then the order alternates, so neither side is always measured first.
  for (let i = 0; i <= options.rounds; i++) {
    const order = i % 2 === 0 ? ["off", "on"] as const : ["on", "off"] as const;
    for (const which of order) {
      const r = await runH2load({
        url: `https://127.0.0.1:${run[which].port}${options.path}`,
        concurrency: run.c,
        durationS: options.durationS,
        warmupS: options.warmupS,
        headers: {
          "accept-encoding": "identity",
          authorization: `Bearer ${options.token}`,
        },
        logFile: join(run.dir, "h2load.log"),
      });
      if (i === 0) continue;
      if (r.error) error ??= `${which}: ${r.error}`;
      rates[which].push(r.reqPerS);
    }
  }
  const offReqPerS = round(median(rates.off), 0);
  const onReqPerS = round(median(rates.on), 0);
  return {
    workload: options.path,
    concurrency: run.c,
    offReqPerS,
    onReqPerS,
    ratio: offReqPerS > 0 ? round(onReqPerS / offReqPerS, 3) : NaN,
    rounds: options.rounds,
    auditEvents: 0,
    error,
  };
}

async function countLines(path: string): Promise<number> {
  try {
    const text = await Deno.readTextFile(path);
    return text.split("\n").filter((l) => l !== "").length;
  } catch {
    return 0;
  }
}

/** The README/results section. */
export function renderGovernance(results: GovernanceResult[]): string[] {
  if (results.length === 0) return [];
  const lines = [
    "## Governance: audit (Metadata) on vs off",
    "",
    `mca with \`${
      results[0].onFlags.filter((f) => !f.includes("/")).join(" ")
    }\` plus an audit policy recording every call at Metadata level to a file, against the same mca without, same run, after one discarded warm-up round, rounds alternating in order; ratio of medians. Events written: ${
      results[0].auditEvents
    }.`,
    "",
    "| workload | concurrency | off req/s | on req/s | on ÷ off |",
    "|---|---|---|---|---|",
  ];
  for (const r of results) {
    lines.push(
      `| GET ${r.workload} | ${r.concurrency} | ${r.offReqPerS} | ${r.onReqPerS} | ${r.ratio}${
        r.error ? ` (${r.error})` : ""
      } |`,
    );
  }
  lines.push("");
  return lines;
}

/** Target of issue 15: policy + audit cost at most 5 % of throughput. */
export function governanceTarget(results: GovernanceResult[]) {
  const worst = Math.min(...results.map((r) => r.ratio));
  return {
    target: "audit at Metadata (+ policy) ≥ 95 % of throughput with both off",
    measured: results.length
      ? `worst on ÷ off ${worst} (c=${
        results.map((r) => r.concurrency).join(", ")
      })`
      : "not measured",
    met: results.length ? worst >= 0.95 : null,
  };
}
