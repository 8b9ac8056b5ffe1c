/**
 * `deno task bench`: mca side by side with a direct connection, `kubectl
 * proxy` and nginx, on the same upstreams and machine, in one run (issue 5).
 *
 *   deno run --allow-all bench/run.ts [--quick] [--skip-cluster]
 *
 * Writes tmp/bench/results.json and tmp/bench/results.md; logs of every
 * process go to tmp/bench/logs/. Every child is stopped at the end, also on
 * Ctrl-C or failure.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Cluster,
  ensureToolchain,
  startCluster,
  type Toolchain,
} from "../tests/support/cluster.ts";
import { defaultTestTls } from "../tests/support/test_certs.ts";
import { type Controlled, startControlled } from "./control.ts";
import { buildRelay, startRelay } from "./rtt.ts";
import {
  type Competitor,
  startKubectlProxy,
  startNginx,
  type UpstreamSpec,
} from "./competitors.ts";
import { getOnce } from "./client.ts";
import {
  type Mca,
  type McaTarget,
  SHIPPED_V8_FLAGS,
  startMca,
  useMain,
  writeFakeSaDir,
} from "./mca.ts";
import {
  type Cell,
  type PathSpec,
  rssAfter,
  runMatrix,
  sanityCheck,
  type Workload,
} from "./matrix.ts";
import { liveNames, runCommand, sleep, stopAll } from "./procs.ts";
import { evaluateTargets, renderMarkdown, type Results } from "./report.ts";
import { measureStartup } from "./startup.ts";
import { streamOnce, type StreamResult } from "./stream.ts";
import { currentLoad, ensureTools, machineInfo } from "./tools.ts";
import { foreignPercent, loadSnapshot } from "./machine_load.ts";
import { runWatches, type WatchResult } from "./watch.ts";
import {
  type GovernanceResult,
  governanceSuite,
  governanceTarget,
  renderGovernance,
} from "./governance.ts";
import { measureObserveCost, type ObserveCost } from "./observe_cost.ts";
import {
  type InstructionCost,
  instructionCosts,
  instructionTargets,
  measureInstructions,
  renderInstructions,
} from "./instructions.ts";
import { VARIANTS } from "./variants.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
let OUT = join(ROOT, "tmp", "bench");
let LOGS = join(OUT, "logs");
const UPSTREAM_PROC = fileURLToPath(
  new URL("./upstream_proc.ts", import.meta.url),
);
const FAKE_TOKEN = "bench-real-sa-token";
const APP_TOKEN = "bench-app-placeholder";

/** Sizes and durations of a run. */
const SETTINGS = {
  full: {
    durationS: 6,
    warmupS: 1,
    concurrencies: [1, 16, 64],
    startupRuns: 7,
    idleWaitMs: 2000,
    watches: 1000,
    watchRate: 10,
    watchDurationS: 15,
    watchPadBytes: 600,
    streamBytes: 200 * 1024 * 1024,
    slowPlan: { initialPauseMs: 3000, burstBytes: 1 << 20, burstPauseMs: 50 },
    clusterConfigMaps: 200,
    retryAbovePct: 15,
    retries: 12,
    rttsMs: [1, 5],
    work: { calls: 2000, warmup: 1500, concurrencies: [1, 16], rounds: 2 },
  },
  quick: {
    durationS: 1,
    warmupS: 0.5,
    concurrencies: [1, 16, 64],
    startupRuns: 5,
    idleWaitMs: 1000,
    watches: 1000,
    watchRate: 5,
    watchDurationS: 5,
    watchPadBytes: 600,
    streamBytes: 200 * 1024 * 1024,
    slowPlan: { initialPauseMs: 1000, burstBytes: 1 << 20, burstPauseMs: 15 },
    clusterConfigMaps: 200,
    retryAbovePct: 15,
    retries: 4,
    rttsMs: [5],
    work: { calls: 200, warmup: 300, concurrencies: [1], rounds: 1 },
  },
};
type Settings = typeof SETTINGS.full;

const flags = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean" },
    "skip-cluster": { type: "boolean" },
    only: { type: "string" },
    main: { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
  strict: true,
}).values;
if (flags.help) {
  console.log(
    [
      "deno task bench [--quick] [--skip-cluster] [--only SECTIONS] [--main FILE]",
      "  --quick          ~2 minute smoke run (short cells, fewer events)",
      "  --skip-cluster   leave out the real kube-apiserver",
      "  --only SECTIONS  comma-separated subset of startup,load,rtt,metrics,governance,work,watch,stream,cluster",
      "                   (rtt = the load matrix with the upstream behind a 1 ms / 5 ms round trip)",
      "                   (metrics = the cost of metrics and of tracing at 100 % and 1 %)",
      "                   (work = instructions per call under callgrind: off, A/A, governance, metrics, tracing 1 %)",
      "  --main FILE      benchmark another copy of mca's main.ts (e.g. a patched one)",
      "  --out DIR        write results and logs there (default tmp/bench; keep it under tmp/)",
      "  results: tmp/bench/results.{md,json}; process logs: tmp/bench/logs/",
    ].join("\n"),
  );
  Deno.exit(0);
}
const mode = flags.quick ? "quick" : "full";
const SECTIONS = [
  "startup",
  "load",
  "rtt",
  "metrics",
  "governance",
  "work",
  "watch",
  "stream",
  "cluster",
];
const only = new Set(
  (flags.only ?? SECTIONS.join(",")).split(",").map((x) => x.trim()),
);
for (const x of only) {
  if (!SECTIONS.includes(x)) {
    console.error(
      `--only: unknown section ${x} (known: ${SECTIONS.join(", ")})`,
    );
    Deno.exit(2);
  }
}
if (flags.main) useMain(resolve(flags.main));
if (flags.out) {
  OUT = resolve(flags.out);
  LOGS = join(OUT, "logs");
}
const S: Settings = SETTINGS[mode];
const began = performance.now();
const retries = { left: S.retries };
/** Share of the machine others used during each section, %. */
const contention: Record<string, { foreignPct: number; stealPct: number }> = {};
async function section<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const before = loadSnapshot();
  try {
    return await fn();
  } finally {
    contention[name] = foreignPercent(before, loadSnapshot());
    if (contention[name].foreignPct > S.retryAbovePct) {
      log(
        `  note: other jobs used ${
          contention[name].foreignPct
        }% of the machine during "${name}"`,
      );
    }
  }
}

function log(line: string): void {
  const t = ((performance.now() - began) / 1000).toFixed(0).padStart(4);
  console.error(`[bench ${t}s] ${line}`);
}

let cluster: Cluster | undefined;
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await stopAll();
    await cluster?.stop().catch(() => {});
  })();
  return cleaning;
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, async () => {
    log(`${sig}: stopping every child process`);
    await cleanup();
    Deno.exit(130);
  });
}

const fakeWorkloads: Workload[] = [
  {
    name: "GET",
    path: "/api/v1/namespaces/default/configmaps/bench",
    approxBytes: 260,
  },
  { name: "LIST", path: "/big?bytes=1048576&chunk=1600", approxBytes: 1048576 },
];

function mcaPath(mca: Mca): PathSpec {
  return {
    name: "mca",
    port: mca.port,
    tls: true,
    ca: mca.appCaPem,
    token: APP_TOKEN,
    pids: () => [mca.pid],
  };
}

/**
 * The smallest relay Deno can be (`bench/repro/minimal_relay.ts`): TLS on
 * both sides through the same `node:https` server and client as mca, and
 * nothing else. What it reaches is what this runtime allows a TLS-to-TLS
 * proxy, whatever mca's own code does.
 */
const DENO_RELAY = fileURLToPath(
  new URL("./repro/minimal_relay.ts", import.meta.url),
);

function relayPath(relay: Mca): PathSpec {
  return { ...mcaPath(relay), name: "deno-relay" };
}

function competitorPaths(
  kp: Competitor,
  nginx: Competitor,
  nginxCa: string,
): PathSpec[] {
  return [
    { name: "kubectl-proxy", port: kp.port, tls: false, pids: kp.pids },
    {
      name: "nginx",
      port: nginx.port,
      tls: true,
      ca: nginxCa,
      token: APP_TOKEN,
      pids: nginx.pids,
    },
  ];
}

/** Starts mca, kubectl proxy and nginx in front of one upstream; runs the matrix. */
async function loadSuite(
  label: string,
  up: UpstreamSpec,
  target: McaTarget,
  workloads: Workload[],
  toolchain: Toolchain,
  results: { load: Cell[]; rss: Record<string, Record<string, number>> },
): Promise<void> {
  const nginxCert = defaultTestTls().server;
  const slug = label.split(" ")[0];
  const mca = await startMca(target, { dir: LOGS, name: `mca-${slug}` });
  const relay = await startMca(target, {
    dir: LOGS,
    name: `deno-relay-${slug}`,
    main: DENO_RELAY,
  });
  const kp = await startKubectlProxy(
    toolchain.kubectl,
    up,
    LOGS,
    `kubectl-proxy-${slug}`,
  );
  const nginx = await startNginx(up, nginxCert, LOGS, `nginx-${slug}`);
  try {
    const paths: PathSpec[] = [
      {
        name: "direct",
        port: up.port,
        tls: true,
        ca: up.caPem,
        token: up.token,
        pids: () => [],
      },
      mcaPath(mca),
      relayPath(relay),
      ...competitorPaths(kp, nginx, nginxCert.caPem),
    ];
    await sanityCheck(paths, workloads);
    log(
      `${label}: every path answers; load matrix (${workloads.length} workloads × ${S.concurrencies.length} concurrencies × ${paths.length} paths)`,
    );
    results.load.push(
      ...await runMatrix({
        upstream: label,
        paths,
        workloads,
        concurrencies: S.concurrencies,
        durationS: S.durationS,
        warmupS: S.warmupS,
        dir: LOGS,
        log,
        retryAbovePct: S.retryAbovePct,
        retries,
      }),
    );
    results.rss[label] = rssAfter(paths);
  } finally {
    await Promise.all([mca.stop(), relay.stop(), kp.stop(), nginx.stop()]);
  }
}

async function fakeUpstreamSuite(
  toolchain: Toolchain,
  out: {
    load: Cell[];
    rss: Record<string, Record<string, number>>;
    watches: WatchResult[];
    streams: StreamResult[];
    startup?: Results["startup"];
    governance: GovernanceResult[];
    observeCost: ObserveCost[];
    instructions: InstructionCost[];
  },
): Promise<void> {
  const upstream: Controlled = await startControlled(
    "fake-upstream",
    UPSTREAM_PROC,
    [FAKE_TOKEN],
    join(LOGS, "fake-upstream"),
  );
  try {
    const caPem = String(upstream.ready.caPem);
    const port = Number(upstream.ready.port);
    const realSaDir = join(LOGS, "fake-real-sa");
    await writeFakeSaDir(realSaDir, FAKE_TOKEN, caPem);
    const target: McaTarget = { realSaDir, host: "127.0.0.1", port };
    const up: UpstreamSpec = {
      host: "127.0.0.1",
      port,
      caPem,
      token: FAKE_TOKEN,
      tlsName: "localhost",
    };
    if (only.has("startup")) {
      log(
        `start-up: ${S.startupRuns} first starts + ${S.startupRuns} restarts`,
      );
      out.startup = await section(
        "start-up",
        () => measureStartup(target, LOGS, S.startupRuns, S.idleWaitMs, log),
      );
    }
    if (only.has("load")) {
      log("fake upstream: load");
      await loadSuite(
        "fake upstream",
        up,
        target,
        fakeWorkloads,
        toolchain,
        out,
      );
    }
    if (only.has("rtt")) {
      await rttSuite({ up, target, toolchain, out });
    }
    if (only.has("governance")) {
      log("fake upstream: governance (audit on vs off)");
      out.governance = await section("governance", () =>
        governanceSuite({
          target,
          dir: LOGS,
          log,
          path: fakeWorkloads[0].path,
          token: APP_TOKEN,
          concurrencies: [1, 16],
          durationS: S.durationS,
          warmupS: S.warmupS,
          rounds: mode === "quick" ? 2 : 3,
        }));
    }
    if (only.has("metrics")) {
      log(
        "fake upstream: metrics on, tracing 100 % and 1 % vs all off (GET, same run)",
      );
      const { costs } = await section(
        "metrics and tracing cost",
        () =>
          measureObserveCost({
            target,
            dir: LOGS,
            workloads: fakeWorkloads.filter((w) => w.name === "GET"),
            concurrencies: S.concurrencies,
            durationS: S.durationS,
            warmupS: S.warmupS,
            token: APP_TOKEN,
            log,
            retryAbovePct: S.retryAbovePct,
            retries,
          }),
      );
      out.observeCost.push(...costs);
    }
    if (only.has("work")) {
      log(
        "fake upstream: instructions per call under callgrind (off, A/A, governance, metrics, tracing 1 %)",
      );
      const counts = await section(
        "work per call",
        () =>
          measureInstructions(target, {
            dir: join(LOGS, "work"),
            ...S.work,
            variants: VARIANTS,
            log,
          }),
      );
      out.instructions = instructionCosts(counts);
    }
    if (only.has("watch")) {
      await watchSuite(upstream, target, port, caPem, out.watches);
    }
    if (only.has("stream")) {
      await streamSuite(target, port, caPem, out.streams);
    }
  } finally {
    await upstream.stop();
  }
}

/**
 * The load matrix again with the fake upstream behind a relay that adds a
 * round trip (bench/rtt.ts): every path, direct included, goes through it,
 * as every client in a cluster reaches its API server over the network.
 */
async function rttSuite(args: {
  up: UpstreamSpec;
  target: McaTarget;
  toolchain: Toolchain;
  out: { load: Cell[]; rss: Record<string, Record<string, number>> };
}): Promise<void> {
  const bin = await buildRelay(LOGS);
  for (const rttMs of S.rttsMs) {
    const relay = await startRelay(bin, {
      port: args.up.port,
      rttMs,
      logBase: join(LOGS, `rtt-relay-${rttMs}ms`),
    });
    try {
      const label = `fake upstream, ${rttMs} ms RTT`;
      log(`${label}: load`);
      await section(label, () =>
        loadSuite(
          label,
          { ...args.up, port: relay.port },
          { ...args.target, port: relay.port },
          fakeWorkloads,
          args.toolchain,
          args.out,
        ));
    } finally {
      await relay.stop();
    }
  }
}

/** Many watches directly (baseline), then through a fresh mca. */
async function watchSuite(
  upstream: Controlled,
  target: McaTarget,
  port: number,
  caPem: string,
  out: WatchResult[],
): Promise<void> {
  log(`watches: ${S.watches} direct (baseline), then through a fresh mca`);
  const base = {
    upstream,
    count: S.watches,
    rate: S.watchRate,
    durationS: S.watchDurationS,
    padBytes: S.watchPadBytes,
    dir: LOGS,
  };
  out.push(
    await section(
      "watches direct",
      () =>
        runWatches({
          ...base,
          label: "direct",
          port,
          caPem,
          token: FAKE_TOKEN,
        }),
    ),
  );
  log(`  ${JSON.stringify(out.at(-1))}`);
  const mca = await startMca(target, { dir: LOGS, name: "mca-watches" });
  try {
    await getOnce(mca.port, "/version", { ca: mca.appCaPem, token: APP_TOKEN });
    await sleep(1000);
    out.push(
      await section("watches mca", () =>
        runWatches({
          ...base,
          label: "mca",
          port: mca.port,
          caPem: mca.appCaPem,
          token: APP_TOKEN,
          proxyPid: mca.pid,
        })),
    );
    log(`  ${JSON.stringify(out.at(-1))}`);
  } finally {
    await mca.stop();
  }
}

/** The big LIST: direct, then a fresh mca each for a fast and a slow reader. */
async function streamSuite(
  target: McaTarget,
  port: number,
  caPem: string,
  out: StreamResult[],
): Promise<void> {
  const mib = Math.round(S.streamBytes / 1048576);
  const bigPath = `/big?bytes=${S.streamBytes}`;
  const timeoutMs = 120_000;
  const fast = { initialPauseMs: 0, burstBytes: 0, burstPauseMs: 0 };
  log(
    `${mib} MiB LIST: direct, then a fresh mca each for a fast and a slow reader`,
  );
  out.push(
    await streamOnce({
      label: "direct, fast reader",
      port,
      path: bigPath,
      caPem,
      token: FAKE_TOKEN,
      plan: fast,
      timeoutMs,
    }),
  );
  log(`  ${JSON.stringify(out.at(-1))}`);
  const slow = S.slowPlan;
  const runs = [
    { label: "mca, fast reader", plan: fast },
    {
      label: `mca, slow reader (${slow.initialPauseMs} ms pause, then ${
        slow.burstBytes >> 20
      } MiB per ${slow.burstPauseMs} ms)`,
      plan: slow,
    },
  ];
  for (const { label, plan } of runs) {
    const mca = await startMca(target, {
      dir: LOGS,
      name: `mca-stream-${out.length}`,
    });
    try {
      await getOnce(mca.port, "/version", {
        ca: mca.appCaPem,
        token: APP_TOKEN,
      });
      await sleep(S.idleWaitMs);
      out.push(
        await section(`stream ${label}`, () =>
          streamOnce({
            label,
            port: mca.port,
            path: bigPath,
            caPem: mca.appCaPem,
            token: APP_TOKEN,
            plan,
            timeoutMs,
            proxyPid: mca.pid,
          })),
      );
      log(`  ${JSON.stringify(out.at(-1))}`);
    } finally {
      await mca.stop();
    }
  }
}

/** ~1 MB of ConfigMaps (no last-applied annotation: `kubectl create`). */
function configMapList(namespace: string, count: number): string {
  const items = [{
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "bench-small", namespace },
    data: { key: "value" },
  }];
  for (let i = 0; i < count; i++) {
    items.push({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: `bench-list-${String(i).padStart(3, "0")}`, namespace },
      data: { key: `value-${i}-` + "x".repeat(4700) },
    });
  }
  return JSON.stringify({ apiVersion: "v1", kind: "List", items });
}

async function clusterSuite(
  toolchain: Toolchain,
  out: { load: Cell[]; rss: Record<string, Record<string, number>> },
  notes: string[],
): Promise<void> {
  log(
    "real kube-apiserver: starting etcd + kube-apiserver + controller-manager",
  );
  const dir = join(LOGS, "cluster");
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  cluster = await startCluster({ dir, toolchain });
  try {
    const ns = cluster.namespace;
    await cluster.kubectl(["create", "-f", "-"], {
      stdin: configMapList(ns, S.clusterConfigMaps),
    });
    const token = await cluster.mintToken({ duration: "2h" });
    const realSaDir = join(LOGS, "cluster-real-sa");
    await cluster.writeServiceAccountDir(realSaDir, { token });
    const caPem = await Deno.readTextFile(cluster.caFile);
    const up: UpstreamSpec = {
      host: "127.0.0.1",
      port: cluster.port,
      caPem,
      token,
      tlsName: "localhost",
    };
    const listPath = `/api/v1/namespaces/${ns}/configmaps`;
    const list = await getOnce(cluster.port, listPath, {
      ca: caPem,
      token,
      keepBody: false,
    });
    const get = await getOnce(cluster.port, `${listPath}/bench-small`, {
      ca: caPem,
      token,
    });
    if (list.status !== 200 || get.status !== 200) {
      throw new Error(
        `seeded cluster answers LIST ${list.status}, GET ${get.status}`,
      );
    }
    notes.push(
      `real kube-apiserver: GET = one ConfigMap (${get.bytes} B), LIST = ${
        S.clusterConfigMaps + 2
      } ConfigMaps in namespace ${ns} (${list.bytes} B), ServiceAccount token (RBAC-checked on every call).`,
    );
    await loadSuite(
      "real kube-apiserver",
      up,
      { realSaDir, host: "127.0.0.1", port: cluster.port },
      [
        {
          name: "GET",
          path: `${listPath}/bench-small`,
          approxBytes: get.bytes,
        },
        { name: "LIST", path: listPath, approxBytes: list.bytes },
      ],
      toolchain,
      out,
    );
  } finally {
    await cluster.stop();
    cluster = undefined;
  }
}

async function gitDescribe(): Promise<string> {
  const head = await runCommand("git", [
    "-C",
    ROOT,
    "rev-parse",
    "--short",
    "HEAD",
  ], 5000);
  const dirty = await runCommand("git", [
    "-C",
    ROOT,
    "status",
    "--porcelain",
    "--",
    "lib",
    "main.ts",
  ], 5000);
  return `${head.stdout.trim()}${
    dirty.stdout.trim() ? " + uncommitted changes in lib/ or main.ts" : ""
  }`;
}

/**
 * Copies main.ts, lib/ and the import map to OUT/snapshot and runs mca from
 * there: other people editing lib/ during a run must not change what half
 * of the run measures.
 */
async function snapshotMca(): Promise<string> {
  const dir = join(OUT, "snapshot");
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(join(dir, "lib"), { recursive: true });
  for (const f of ["main.ts", "deno.json", "deno.lock"]) {
    await Deno.copyFile(join(ROOT, f), join(dir, f));
  }
  const copyTree = async (from: string, to: string): Promise<void> => {
    await Deno.mkdir(to, { recursive: true });
    for (const e of Deno.readDirSync(from)) {
      if (e.isDirectory) await copyTree(join(from, e.name), join(to, e.name));
      else if (e.isFile) {
        await Deno.copyFile(join(from, e.name), join(to, e.name));
      }
    }
  };
  await copyTree(join(ROOT, "lib"), join(dir, "lib"));
  return join(dir, "main.ts");
}

async function main(): Promise<number> {
  await Deno.mkdir(OUT, { recursive: true });
  await Deno.remove(LOGS, { recursive: true }).catch(() => {});
  await Deno.mkdir(LOGS, { recursive: true });
  log(`${mode} run; logs in ${LOGS}`);
  const mcaVersion = flags.main
    ? `--main ${resolve(flags.main)}`
    : await gitDescribe();
  if (!flags.main) useMain(await snapshotMca());
  await ensureTools(log);
  log("toolchain (kube-apiserver, kubectl): building or taking from cache");
  const toolchain = await ensureToolchain();
  const machine = await machineInfo({
    kubectl: toolchain.kubectl,
    kubeApiserver: toolchain.kubeApiserver,
  });
  machine.versions.mca = mcaVersion;
  machine.versions.mcaV8Flags = SHIPPED_V8_FLAGS.join(",") || "(V8 defaults)";

  const notes: string[] = [
    ...(flags.main
      ? [
        `mca under test: ${
          resolve(flags.main)
        } (--main), not this checkout's main.ts.`,
      ]
      : []),
    "kubectl proxy serves plain HTTP to its clients (h2load talks http:// to it); every other path is TLS on the client side. kubectl is the one built with the apiserver (same version); to the real apiserver it speaks HTTP/2, the other proxies HTTP/1.1.",
    "deno-relay: bench/repro/minimal_relay.ts, a bare node:https server forwarding with https.request over one keep-alive agent (TLS both sides, as mca; no log, no routing): what Deno itself allows a TLS-to-TLS proxy.",
    "nginx: 1 worker process, TLS 1.2/1.3 both sides, keep-alive upstream pool, proxy_buffering off (watches must stream) with proxy_buffer_size 64k, Authorization replaced, one access-log line per request (mca writes one JSON line per call to a pipe; both count).",
    "mca runs as `deno run -A main.ts` from a copy of main.ts + lib/ taken when the run started (tmp/bench/snapshot), as a separate process; its call log goes through a pipe to a file. Apps send any bearer token; mca swaps in the real one.",
    "Every request sends `Accept-Encoding: identity`, so every path moves the same bytes (kubectl proxy's Go transport would otherwise ask for gzip by itself).",
    "Fake upstream = tests/support/fake_upstream.ts (node:https under Deno) in its own process: GET = one ConfigMap, LIST = /big?bytes=1048576&chunk=1600 (chunked, in the 1.6 KB pieces kube-apiserver sends).",
  ];
  const errors: string[] = [];
  const out = {
    load: [] as Cell[],
    rss: {} as Record<string, Record<string, number>>,
    watches: [] as WatchResult[],
    streams: [] as StreamResult[],
    startup: undefined as Results["startup"],
    governance: [] as GovernanceResult[],
    observeCost: [] as ObserveCost[],
    instructions: [] as InstructionCost[],
  };
  try {
    await fakeUpstreamSuite(toolchain, out);
  } catch (error) {
    errors.push(`fake upstream suite: ${(error as Error).stack ?? error}`);
    log(`ERROR ${errors.at(-1)}`);
  }
  if (flags["skip-cluster"] || !only.has("cluster")) {
    notes.push("--skip-cluster: the real kube-apiserver was not measured.");
  } else {
    try {
      await clusterSuite(toolchain, out, notes);
    } catch (error) {
      errors.push(
        `real kube-apiserver suite: ${(error as Error).stack ?? error}`,
      );
      log(`ERROR ${errors.at(-1)}`);
    }
  }
  machine.loadavgEnd = currentLoad();
  const partial = {
    mode,
    machine,
    settings: { ...S },
    startup: out.startup,
    load: out.load,
    rssAfterLoadMiB: out.rss,
    contention,
    retriesUsed: S.retries - retries.left,
    watches: out.watches,
    streams: out.streams,
    governance: out.governance,
    observeCost: out.observeCost,
    instructions: out.instructions,
    notes,
    errors,
    durationS: (performance.now() - began) / 1000,
  } as Omit<Results, "targets">;
  const results: Results = { ...partial, targets: evaluateTargets(partial) };
  if (out.governance.length > 0) {
    results.targets.push(governanceTarget(out.governance));
  }
  results.targets.push(...instructionTargets(out.instructions));
  await Deno.writeTextFile(
    join(OUT, "results.json"),
    JSON.stringify(results, null, 2) + "\n",
  );
  const md = [
    renderMarkdown(results),
    ...renderGovernance(out.governance),
    ...renderInstructions(out.instructions),
  ].join("\n");
  await Deno.writeTextFile(join(OUT, "results.md"), md);
  console.log(md);
  log(`wrote ${join(OUT, "results.md")} and results.json`);
  return errors.length ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  log(`FAILED: ${(error as Error).stack ?? error}`);
} finally {
  await cleanup();
  const left = liveNames();
  if (left.length) {
    log(`WARNING: still running after cleanup: ${left.join(", ")}`);
  }
}
Deno.exit(code);
