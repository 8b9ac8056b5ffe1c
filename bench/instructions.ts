/**
 * Instructions per call of each mca variant (`variants.ts`), counted by
 * valgrind's callgrind: the count a call costs does not depend on what
 * else the machine runs, where CPU time and throughput on two shared cores
 * swing by more than the 3–5 % the cost targets of issues 15 and 16 are
 * about (the A/A pair of `cpu_ab.ts` spans ×0.88–1.11).
 *
 *   deno run -A bench/instructions.ts [--calls 2000] [--warmup 1500]
 *        [-c 1,16] [--rounds 2] [--variants off,off-b,metrics,...]
 *
 * (`deno task bench` runs it as its `work` section.)
 *
 * Each variant runs under `valgrind --tool=callgrind` (about 30–50 times
 * slower, so this measures work, not latency; two at a time); h2load sends
 * `--warmup` GETs (V8 compiles the hot paths), then for each concurrency
 * the counters are zeroed, `--calls` GETs are sent, and the counters
 * dumped: that dump's total ÷ calls is the variant's instructions per
 * call at that concurrency, all threads together (the
 * JavaScript thread, V8's GC helpers, Tokio's). Timers that run while idle
 * are in it too; their rate is measured after the calls and reported, so a
 * reader can tell them apart. What is not counted: instructions V8 spends
 * in code valgrind could not see change (none, with `--smc-check=all`, at
 * about twice the slowdown; the default `stack` check already ran mca
 * correctly, but JIT code is not on the stack).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startControlled } from "./control.ts";
import { runCommand, sleep, stopAll } from "./procs.ts";
import {
  type Mca,
  type McaTarget,
  startMca,
  useMain,
  writeFakeSaDir,
} from "./mca.ts";
import { startSpanSink } from "./observe_cost.ts";
import {
  type Variant,
  variantOptions,
  VARIANTS,
  writeGovernanceFiles,
} from "./variants.ts";
import { round } from "./stats.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const PATH = "/api/v1/namespaces/default/configmaps/bench";

/** One variant's instructions per call at one concurrency in one round. */
export interface InstructionCount {
  variant: Variant;
  round: number;
  concurrency: number;
  perCall: number;
  /** Instructions per second with no calls (timers, flushes). */
  idlePerS: number;
}

/** Options of {@linkcode measureInstructions}. */
export interface InstructionOptions {
  dir: string;
  /** Counted calls per concurrency. */
  calls: number;
  /** Calls before the first count (JIT warm-up). */
  warmup: number;
  concurrencies: number[];
  rounds: number;
  variants: readonly Variant[];
  log: (line: string) => void;
}

/** `h2load -n calls`: how many answered 2xx (throws if h2load failed). */
async function load(mca: Mca, calls: number, c: number): Promise<number> {
  const out = await runCommand("h2load", [
    "--h1",
    "-n",
    String(calls),
    "-c",
    String(c),
    "-t",
    "1",
    "-H",
    "accept-encoding: identity",
    "-H",
    "authorization: Bearer bench-app-placeholder",
    `https://127.0.0.1:${mca.port}${PATH}`,
  ], 900_000);
  const ok = out.stdout.match(/status codes: (\d+) 2xx/);
  if (out.code !== 0 || !ok) {
    throw new Error(
      `h2load against ${mca.proc.name} exited ${out.code}: ${
        (out.stderr || out.stdout).trim().split("\n").slice(-6).join(" | ")
      }`,
    );
  }
  return Number(ok[1]);
}

/**
 * The instructions of `calls` GETs, all answered 2xx. Under valgrind mca is
 * slow enough for the fake upstream (node:https, 5 s keep-alive timeout)
 * to close an idle pooled connection just as mca reuses it; such a call
 * ends in a 503 and costs other instructions than a served one, so the
 * window is counted again, once.
 */
async function countedCalls(
  mca: Mca,
  ctx: { outBase: string; calls: number; c: number; log: (l: string) => void },
): Promise<number> {
  for (let attempt = 1;; attempt++) {
    let served = 0;
    const total = await counted(mca, ctx.outBase, async () => {
      served = await load(mca, ctx.calls, ctx.c);
    });
    if (served === ctx.calls) return total / ctx.calls;
    const what = `${mca.proc.name} c=${ctx.c}: ${served} of ${ctx.calls} 2xx`;
    if (attempt === 2) throw new Error(`${what}, twice`);
    ctx.log(`  ${what}; counting the window again`);
  }
}

/** Zeroes the counters, runs `work`, dumps: the instructions `work` took. */
async function counted(
  mca: Mca,
  outBase: string,
  work: () => Promise<void>,
): Promise<number> {
  await control(["-z", String(mca.pid)]);
  await work();
  const before = new Set(await dumps(outBase));
  await control(["-d", String(mca.pid)]);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    for (const f of await dumps(outBase)) {
      if (before.has(f)) continue;
      const text = await Deno.readTextFile(f);
      const m = text.match(/^summary: (\d+)/m);
      if (m) return Number(m[1]);
    }
    await sleep(100); // polling a file valgrind writes; not a test
  }
  throw new Error(`callgrind wrote no dump for ${mca.proc.name} in 30 s`);
}

async function control(args: string[]): Promise<void> {
  const out = await runCommand("callgrind_control", args, 60_000);
  if (out.code !== 0) {
    throw new Error(`callgrind_control ${args.join(" ")}: ${out.stderr}`);
  }
}

async function dumps(outBase: string): Promise<string[]> {
  const dir = join(outBase, "..");
  const prefix = outBase.slice(dir.length + 1);
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(prefix + ".")) out.push(join(dir, e.name));
  }
  return out;
}

/**
 * One variant under callgrind: warm up, count the calls at each
 * concurrency, then count 5 s of idle. A /metrics scrape is not counted:
 * five scrapes in, prom-client's code still ran cold under valgrind (95 M
 * instructions, 120 calls' worth), where `cpu_ab.ts` measures a warm one
 * natively (about 3 ms of CPU, or 0.02 % of a core at a 15 s interval).
 */
async function countVariant(
  variant: Variant,
  ctx: {
    target: McaTarget;
    sinkPort: number;
    round: number;
    options: InstructionOptions;
  },
): Promise<InstructionCount[]> {
  const { dir, calls } = ctx.options;
  const outBase = join(dir, `callgrind-${variant}-${ctx.round}`);
  const mca = await startMca(ctx.target, {
    ...variantOptions(variant, { dir, sinkPort: ctx.sinkPort }),
    name: `${variant}-${ctx.round}`,
    wrap: [
      "valgrind",
      "--tool=callgrind",
      `--callgrind-out-file=${outBase}.%p`,
      "--smc-check=all",
      "--dump-instr=no",
      "--compress-strings=no",
    ],
    readyTimeoutMs: 600_000,
  });
  try {
    const cs = ctx.options.concurrencies;
    // warm-up answers are not counted, whatever they were
    await load(mca, ctx.options.warmup, Math.max(...cs));
    const perCall: number[] = [];
    for (const c of cs) {
      perCall.push(
        await countedCalls(mca, { outBase, calls, c, log: ctx.options.log }),
      );
    }
    const idleMs = 5_000;
    const idlePerS = await counted(mca, outBase, () => sleep(idleMs)) /
      (idleMs / 1000);
    return cs.map((concurrency, i) => ({
      variant,
      round: ctx.round,
      concurrency,
      perCall: perCall[i],
      idlePerS,
    }));
  } finally {
    await mca.stop();
  }
}

/**
 * Counts every variant `rounds` times (a new process each time, two at a
 * time) against the upstream of `target`.
 */
export async function measureInstructions(
  target: McaTarget,
  options: InstructionOptions,
): Promise<InstructionCount[]> {
  await Deno.mkdir(options.dir, { recursive: true });
  await writeGovernanceFiles(options.dir);
  const sink = await startSpanSink();
  try {
    const all: InstructionCount[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      const counts = await twoAtATime(
        options.variants.map((v) => () =>
          countVariant(v, { target, sinkPort: sink.port, round, options })
        ),
      );
      for (const list of counts) {
        for (const c of list) {
          options.log(
            `  round ${round} ${c.variant} c=${c.concurrency}: ${
              round2(c.perCall / 1e6)
            } M instructions/call, idle ${round2(c.idlePerS / 1e6)} M/s`,
          );
          all.push(c);
        }
      }
    }
    return all;
  } finally {
    await sink.close();
  }
}

const round2 = (x: number) => round(x, 3);

function parseFlags(): Omit<InstructionOptions, "dir" | "log"> & {
  main?: string;
} {
  const v = parseArgs({
    args: Deno.args,
    options: {
      calls: { type: "string", default: "2000" },
      warmup: { type: "string", default: "1500" },
      c: { type: "string", short: "c", default: "1,16" },
      rounds: { type: "string", default: "2" },
      variants: { type: "string", default: VARIANTS.join(",") },
      main: { type: "string" },
    },
  }).values;
  const variants = v.variants.split(",") as Variant[];
  for (const name of variants) {
    if (!VARIANTS.includes(name)) {
      throw new Error(
        `--variants: unknown variant "${name}"; known: ${VARIANTS.join(", ")}`,
      );
    }
  }
  return {
    calls: Number(v.calls),
    warmup: Number(v.warmup),
    concurrencies: v.c.split(",").map(Number),
    rounds: Number(v.rounds),
    variants,
    main: v.main,
  };
}

/** Runs `jobs` two at a time (two cores), results in input order. */
async function twoAtATime<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  };
  await Promise.all([worker(), worker()]);
  return out;
}

/** One variant's cost at one concurrency: medians over rounds. */
export interface InstructionCost {
  variant: Variant;
  concurrency: number;
  /** Median instructions per call. */
  perCall: number;
  /** ÷ the median of both all-off variants' rounds. */
  ratio: number;
  /** The rounds' spread, as ratios. */
  min: number;
  max: number;
}

/** The median, the middle two averaged (two rounds give their mean). */
function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Medians per variant and concurrency against both all-off variants. */
export function instructionCosts(all: InstructionCount[]): InstructionCost[] {
  const out: InstructionCost[] = [];
  for (const c of new Set(all.map((x) => x.concurrency))) {
    const at = all.filter((x) => x.concurrency === c);
    const per = (v: Variant) =>
      at.filter((x) => x.variant === v).map((x) => x.perCall);
    const base = median([...per("off"), ...per("off-b")]);
    for (const v of new Set(at.map((x) => x.variant))) {
      const list = per(v);
      out.push({
        variant: v,
        concurrency: c,
        perCall: Math.round(median(list)),
        ratio: round(median(list) / base, 3),
        min: round(Math.min(...list) / base, 3),
        max: round(Math.max(...list) / base, 3),
      });
    }
  }
  return out;
}

/** The work bound of each variant (issues 15 and 16), as a share. */
const WORK_TARGETS: Partial<Record<Variant, [string, number]>> = {
  metrics: ["metrics on", 0.03],
  "tracing-1": ["tracing at 1 %", 0.05],
  governance: ["100-rule policy + audit at Metadata", 0.05],
};

/**
 * One verdict per variant with a bound: its worst median ratio over the
 * concurrencies against the bound, left open when the all-off pair (A/A)
 * already differs by more than it.
 */
export function instructionTargets(
  costs: InstructionCost[],
): { target: string; measured: string; met: boolean | null }[] {
  const out: ReturnType<typeof instructionTargets> = [];
  for (const [variant, [what, bound]] of Object.entries(WORK_TARGETS)) {
    const mine = costs.filter((c) => c.variant === variant);
    if (mine.length === 0) continue;
    const aa = costs.filter((c) => c.variant === "off-b")
      .map((c) => Math.abs(1 - c.ratio));
    const noise = aa.length ? Math.max(...aa) : NaN;
    const worst = Math.max(...mine.map((c) => c.ratio));
    const measured = mine.map((c) =>
      `c=${c.concurrency} ×${c.ratio} (rounds ×${c.min}–×${c.max})`
    ).join(", ") + `; A/A ±${round(noise * 100, 1)} %`;
    out.push({
      target: `${what}: ≤ ${bound * 100} % more instructions per call`,
      measured,
      met: noise <= bound ? worst <= 1 + bound : null,
    });
  }
  return out;
}

/** The results table of the `work` section. */
export function renderInstructions(costs: InstructionCost[]): string[] {
  if (costs.length === 0) return [];
  const lines = [
    "## Work per call: instructions counted by callgrind (fake upstream, GET)",
    "",
    "Each variant in its own process under `valgrind --tool=callgrind`, counters zeroed after a warm-up; median over rounds (a new process each), ÷ the median of the two all-off variants' rounds. Counts do not depend on what else the machine runs.",
    "",
    "| variant | concurrency | M instructions/call | ÷ all off | rounds |",
    "|---|---|---|---|---|",
  ];
  for (const c of costs) {
    lines.push(
      `| ${c.variant} | ${c.concurrency} | ${
        round2(c.perCall / 1e6)
      } | ×${c.ratio} | ×${c.min}–×${c.max} |`,
    );
  }
  lines.push("");
  return lines;
}

async function main(): Promise<void> {
  const flags = parseFlags();
  if (flags.main) useMain(flags.main);
  const dir = join(ROOT, "tmp", "bench", `instructions-${Date.now()}`);
  await Deno.mkdir(dir, { recursive: true });
  const upstream = await startControlled(
    "fake-upstream",
    fileURLToPath(new URL("./upstream_proc.ts", import.meta.url)),
    ["bench-real-sa-token"],
    join(dir, "fake-upstream"),
  );
  try {
    const realSaDir = join(dir, "real-sa");
    await writeFakeSaDir(
      realSaDir,
      "bench-real-sa-token",
      String(upstream.ready.caPem),
    );
    const target = {
      realSaDir,
      host: "127.0.0.1",
      port: Number(upstream.ready.port),
    };
    const counts = await measureInstructions(target, {
      ...flags,
      dir,
      log: console.log,
    });
    for (const c of instructionCosts(counts)) {
      console.log(
        `${c.variant} c=${c.concurrency}: median ${
          round2(c.perCall / 1e6)
        } M/call, ×${c.ratio} of the all-off median (rounds ×${c.min}–×${c.max})`,
      );
    }
  } finally {
    await upstream.stop();
    await stopAll();
  }
}

if (import.meta.main) await main();
