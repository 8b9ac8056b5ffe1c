/**
 * CPU profile of mca under one load cell, to find what in our code costs.
 *
 *   deno run -A bench/profile.ts [--workload GET|LIST] [-c 16] [--seconds 10]
 *                                [--main path/to/main.ts] [--summary FILE]
 *                                [--rtt MS]
 *                                [--mca-arg=--policy=FILE ...]
 *
 * Starts the fake upstream (own process) and mca with `--cpu-prof`, drives
 * it with h2load, stops it (SIGTERM → Deno.exit writes the profile), then
 * prints where the main thread's time went: by category (our lib/, npm
 * dependencies, Deno's node:/ext: runtime code, GC, native "(program)"), the
 * top self-time functions, and the inclusive time of our own functions.
 * `--main` profiles another copy of mca (e.g. a patched one under tmp/).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startControlled } from "./control.ts";
import { getOnce } from "./client.ts";
import { runH2load } from "./h2load.ts";
import { cpuSeconds, memory, spawn, stopAll } from "./procs.ts";
import { SHIPPED_V8_FLAGS, v8FlagArgs, writeFakeSaDir } from "./mca.ts";
import { buildRelay, startRelay } from "./rtt.ts";
import {
  formatThreads,
  mainWakeups,
  threadDelta,
  threadTicks,
} from "./threads.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const OUT = join(ROOT, "tmp", "bench", "profile");
const ROOT_URL = new URL("../", import.meta.url).href;

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Category of a frame, from its script URL. */
export function category(frame: CpuNode["callFrame"]): string {
  const { url, functionName } = frame;
  if (url === "") {
    if (functionName === "(garbage collector)") return "GC";
    if (functionName === "(idle)") return "idle";
    if (functionName === "(program)") return "native (program)";
    if (functionName === "(root)") return "root";
    return "runtime native (ops, bindings: TLS, sockets, fs)";
  }
  if (url.includes("/npm/") || url.includes("node_modules")) return "npm deps";
  if (url.startsWith(ROOT_URL)) return "ours (lib/, main.ts)";
  if (url.startsWith("node:") || url.startsWith("ext:deno_node")) {
    return "runtime node: polyfills (JS)";
  }
  if (url.startsWith("ext:")) return "runtime ext: other (JS)";
  return "other";
}

/** Summarises a .cpuprofile as markdown-ish text. */
export function summarize(profile: CpuProfile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  let total = 0;
  for (const v of self.values()) total += v;
  const key = (n: CpuNode) =>
    `${n.callFrame.functionName || "(anonymous)"} ${
      n.callFrame.url.replace(ROOT_URL, "").replace(
        /^.*\/npm\/registry\.npmjs\.org\//,
        "npm:",
      )
    }:${n.callFrame.lineNumber + 1}`;

  const cats = new Map<string, number>();
  const selfByKey = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    const c = category(n.callFrame);
    cats.set(c, (cats.get(c) ?? 0) + t);
    selfByKey.set(key(n), (selfByKey.get(key(n)) ?? 0) + t);
  }
  // Inclusive time of our functions (no double count under recursion).
  const inclusive = new Map<string, number>();
  const subtree = new Map<number, number>();
  const sub = (id: number): number => {
    if (subtree.has(id)) return subtree.get(id)!;
    const n = byId.get(id)!;
    let t = self.get(id) ?? 0;
    for (const c of n.children ?? []) t += sub(c);
    subtree.set(id, t);
    return t;
  };
  const walk = (id: number, active: Set<string>) => {
    const n = byId.get(id)!;
    const k = key(n);
    const ours = category(n.callFrame).startsWith("ours");
    const entered = ours && !active.has(k);
    if (entered) {
      inclusive.set(k, (inclusive.get(k) ?? 0) + sub(id));
      active.add(k);
    }
    for (const c of n.children ?? []) walk(c, active);
    if (entered) active.delete(k);
  };
  const root = profile.nodes[0].id;
  sub(root);
  walk(root, new Set());

  const busy = total - (cats.get("idle") ?? 0);
  const pct = (t: number, of: number) => `${(100 * t / of).toFixed(1)}%`;
  const lines: string[] = [];
  lines.push(
    `profiled ${(total / 1e6).toFixed(2)} s, busy (not idle) ${
      (busy / 1e6).toFixed(2)
    } s`,
    "",
    "by category (share of busy time):",
  );
  for (const [c, t] of [...cats].sort((a, b) => b[1] - a[1])) {
    if (c === "idle") continue;
    lines.push(`  ${pct(t, busy).padStart(6)}  ${c}`);
  }
  lines.push("", `top ${top} functions by self time (share of busy):`);
  for (
    const [k, t] of [...selfByKey].sort((a, b) => b[1] - a[1]).slice(0, top)
  ) {
    if (k.startsWith("(idle)")) continue;
    lines.push(`  ${pct(t, busy).padStart(6)}  ${k}`);
  }
  lines.push("", "our functions, inclusive time (share of busy):");
  for (
    const [k, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)
  ) {
    lines.push(`  ${pct(t, busy).padStart(6)}  ${k}`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const flags = parseArgs({
    args: Deno.args,
    options: {
      workload: { type: "string", default: "GET" },
      c: { type: "string", short: "c", default: "16" },
      seconds: { type: "string", default: "10" },
      main: { type: "string" },
      summary: { type: "string" },
      "no-prof": { type: "boolean" },
      rtt: { type: "string" },
      /** More mca flags, e.g. `--mca-arg=--metrics-port=9464` (repeatable). */
      "mca-arg": { type: "string", multiple: true },
      "v8-flags": { type: "string" },
      warm: { type: "string", default: "0" },
    },
  }).values;
  const mainTs = resolve(flags.main ?? join(ROOT, "main.ts"));
  const run = join(OUT, `${flags.workload}-c${flags.c}-${Date.now()}`);
  await Deno.mkdir(run, { recursive: true });
  const token = "profile-real-token";
  const upstream = await startControlled(
    "fake-upstream",
    fileURLToPath(new URL("./upstream_proc.ts", import.meta.url)),
    [token],
    join(run, "fake-upstream"),
  );
  try {
    const saDir = join(run, "real-sa");
    await writeFakeSaDir(saDir, token, String(upstream.ready.caPem));
    // --rtt MS: the upstream behind a relay that adds that round trip.
    const relay = flags.rtt === undefined ? undefined : await startRelay(
      await buildRelay(OUT),
      {
        port: Number(upstream.ready.port),
        rttMs: Number(flags.rtt),
        logBase: join(run, "rtt-relay"),
      },
    );
    const upstreamPort = relay?.port ?? Number(upstream.ready.port);
    const mca = spawn("mca", Deno.execPath(), {
      args: [
        "run",
        "-A",
        ...(flags["no-prof"] ? [] : ["--cpu-prof", `--cpu-prof-dir=${run}`]),
        // what ships, unless named (`--v8-flags=` alone: V8's defaults)
        ...v8FlagArgs(
          flags["v8-flags"]?.split(",").filter(Boolean) ?? SHIPPED_V8_FLAGS,
        ),
        mainTs,
        "--sa-dir",
        saDir,
        "--mca-sa-dir",
        join(run, "mca-sa"),
        "--state-dir",
        join(run, "state"),
        "--listen",
        "127.0.0.1",
        "--port",
        "0",
        "--metrics-port",
        "0",
        ...(flags["mca-arg"] ?? []),
      ],
      env: {
        KUBERNETES_SERVICE_HOST: "127.0.0.1",
        KUBERNETES_SERVICE_PORT: String(upstreamPort),
      },
      logBase: join(run, "mca"),
      stdoutLogLimit: 4 << 20,
    });
    const ready = JSON.parse(
      await mca.waitForLine((l) => l.includes('"msg":"ready"'), 30_000),
    );
    console.log(`mca pid ${mca.pid}`);
    const listen = String(ready.listen[0]);
    const port = Number(listen.slice(listen.lastIndexOf(":") + 1));
    const ca = await Deno.readTextFile(join(run, "mca-sa", "ca.crt"));
    const path = flags.workload === "LIST"
      ? "/big?bytes=1048576&chunk=1600"
      : "/api/v1/namespaces/default/configmaps/bench";
    const got = await getOnce(port, path, { ca, token: "x", keepBody: false });
    if (got.status !== 200) throw new Error(`sanity: ${got.status}`);
    const load = (durationS: number, warmupS: number, log: string) =>
      runH2load({
        url: `https://127.0.0.1:${port}${path}`,
        concurrency: Number(flags.c),
        durationS,
        warmupS,
        headers: { authorization: "Bearer x", "accept-encoding": "identity" },
        logFile: join(run, log),
      });
    // --warm S: load first, unmeasured, so the figures are past V8's tiering.
    if (Number(flags.warm) > 0) await load(Number(flags.warm), 0, "warm.log");
    const idleRss = memory(mca.pid).rssKiB;
    const cpu0 = cpuSeconds([mca.pid]);
    const threads0 = threadTicks(mca.pid);
    const wakes0 = mainWakeups(mca.pid);
    const r = await load(Number(flags.seconds), 1, "h2load.log");
    const cpuUs = (cpuSeconds([mca.pid]) - cpu0) / r.loggedRequests * 1e6;
    const mem = memory(mca.pid);
    const perThread = threadDelta(threads0, threadTicks(mca.pid));
    const wakes = (mainWakeups(mca.pid) - wakes0) / r.loggedRequests;
    console.log(
      `${flags.workload} c=${flags.c}: ${r.reqPerS} req/s p50 ${r.p50Ms} ms p99 ${r.p99Ms} ms, mca CPU ${
        cpuUs.toFixed(0)
      } µs/req, RSS idle ${(idleRss / 1024).toFixed(1)} → ${
        (mem.rssKiB / 1024).toFixed(1)
      } MiB (HWM ${(mem.hwmKiB / 1024).toFixed(1)})${
        r.error ? " ERROR " + r.error : ""
      }`,
    );
    console.log(formatThreads(perThread, r.loggedRequests));
    console.log(`main thread wake-ups per request: ${wakes.toFixed(2)}`);
    await mca.stop(10_000);
    if (flags["no-prof"]) return;
    const file = [...Deno.readDirSync(run)].find((e) =>
      e.name.endsWith(".cpuprofile")
    );
    if (!file) throw new Error(`no .cpuprofile in ${run}`);
    const text = summarize(
      JSON.parse(await Deno.readTextFile(join(run, file.name))),
    );
    console.log(text);
    console.log(`\nprofile: ${join(run, file.name)}`);
    if (flags.summary) {
      await Deno.writeTextFile(flags.summary, text + "\n");
    }
  } finally {
    await upstream.stop();
    await stopAll();
  }
}

if (import.meta.main) await main();
