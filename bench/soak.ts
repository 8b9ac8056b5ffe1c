/**
 * `deno task bench:soak`: a bounded soak of one mca in front of the fake
 * upstream (issues 11 and 17). Sixteen clients run a mixed load — GETs by
 * name, LISTs read to the end, LISTs and request bodies abandoned half-way
 * (the pattern that once left upstream connections behind) — for
 * `--minutes` (10 by default) or `--max-requests`, whichever comes first.
 * Beside them `--watches` watches stay open the whole run while the upstream
 * pushes events at `--event-rate` (events per second delivered in total:
 * each push reaches every watch, so pushes/s = event rate ÷ watches); every
 * event is counted per watch at the client (bench/soak_events.ts). A third
 * of the way in the real service-account token is rotated, half-way the
 * routing file is replaced by a new version, both as the kubelet does it.
 *
 * Every `--every` seconds it records mca's RSS, its established connections
 * to the upstream and how many of them are watches; after the load it waits
 * (bounded) for idle connections to be closed. The verdict
 * (bench/soak_report.ts) wants 0 failed calls, 0 lost events, the new token
 * seen upstream and the old one no more, the reload logged and counted, and
 * RSS and the non-watch connections flat.
 *
 *   deno run -A bench/soak.ts [--minutes 10] [--max-requests 2000000]
 *                             [--every 10] [--out tmp/bench]
 *                             [--kinds 0,1,2,3,4]   (a subset of the mix)
 *                             [--rate 150]          (calls per second, at most)
 *                             [--watches 1000] [--event-rate 1000]
 *                             [--pad 256]           (bytes of data per event)
 *                             [--warmup 60]         (s left out of the RSS figures)
 *
 * Writes `<out>/soak.json` and `<out>/soak.md`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { type Controlled, startControlled } from "./control.ts";
import { type Mca, startMca, writeFakeSaDir } from "./mca.ts";
import { memory, runCommand, sleep, stopAll } from "./procs.ts";
import { round } from "./stats.ts";
import { foreignPercent, loadSnapshot } from "./machine_load.ts";
import { callLoad, connectionsTo } from "./soak_calls.ts";
import {
  countEvents,
  openWatches,
  reloadRouting,
  rotateToken,
  ROUTING_V1,
} from "./soak_events.ts";
import { report, type Sample, type SoakResult } from "./soak_report.ts";
import { writeProjectedVolume } from "../tests/support/cluster.ts";

const TOKEN = "bench-soak-token";
const ROTATED = "bench-soak-token-rotated";
const CLIENTS = 16;

function flags() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      minutes: { type: "string", default: "10" },
      "max-requests": { type: "string", default: "2000000" },
      every: { type: "string", default: "10" },
      out: { type: "string", default: "tmp/bench" },
      kinds: { type: "string", default: "0,1,2,3,4" },
      rate: { type: "string", default: "150" },
      watches: { type: "string", default: "1000" },
      "event-rate": { type: "string", default: "1000" },
      pad: { type: "string", default: "256" },
      warmup: { type: "string", default: "60" },
    },
  });
  const minutes = Number(values.minutes);
  return {
    minutes,
    maxRequests: Number(values["max-requests"]),
    everyMs: Number(values.every) * 1000,
    out: values.out!,
    kinds: values.kinds!.split(",").map(Number),
    rate: Number(values.rate),
    watches: Number(values.watches),
    eventRate: Number(values["event-rate"]),
    pad: Number(values.pad),
    // A short run keeps most of its samples.
    warmupS: Math.min(Number(values.warmup), minutes * 60 / 5),
  };
}
type Flags = ReturnType<typeof flags>;

/** The processes of one soak and where their files live. */
interface Rig {
  upstream: Controlled;
  port: number;
  caPem: string;
  saDir: string;
  routingDir: string;
  mca: Mca;
  logs: string;
}

async function startRig(out: string): Promise<Rig> {
  const logs = join(out, "soak-logs");
  await Deno.remove(logs, { recursive: true }).catch(() => {});
  await Deno.mkdir(logs, { recursive: true });
  const upstream = await startControlled(
    "soak-upstream",
    new URL("./upstream_proc.ts", import.meta.url).pathname,
    [TOKEN],
    join(logs, "upstream"),
  );
  const port = Number(upstream.ready.port);
  const caPem = String(upstream.ready.caPem);
  const saDir = join(logs, "real-sa");
  await writeFakeSaDir(saDir, TOKEN, caPem);
  // A mounted ConfigMap, as the kubelet lays it out.
  const routingDir = join(logs, "routing");
  await writeProjectedVolume(routingDir, { "routing.yaml": ROUTING_V1 });
  const mca = await startMca(
    { realSaDir: saDir, host: "127.0.0.1", port },
    {
      dir: logs,
      name: "soak-mca",
      metrics: true,
      args: ["--routing-config", join(routingDir, "routing.yaml")],
    },
  );
  return { upstream, port, caPem, saDir, routingDir, mca, logs };
}

async function commit(): Promise<string> {
  const head = await runCommand(
    "git",
    ["rev-parse", "--short", "HEAD"],
    10_000,
  );
  const dirty = await runCommand("git", ["status", "--porcelain"], 10_000);
  return head.stdout.trim() + (dirty.stdout.trim() ? "+uncommitted" : "");
}

/** Samples mca every `everyMs` (aligned to `started`) until stopped. */
function startSampler(rig: Rig, everyMs: number, started: number) {
  const samples: Sample[] = [];
  const counts = { requests: 0, failed: 0 };
  const sample = async () => {
    const w = await rig.upstream.send({ cmd: "watches" }, 10_000);
    samples.push({
      atS: round((performance.now() - started) / 1000, 1),
      rssMiB: round(memory(rig.mca.pid).rssKiB / 1024, 1),
      upstreamConnections: connectionsTo(rig.port),
      upstreamWatches: Number(w.watches),
      ...counts,
    });
  };
  let sampling = true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let pending = Promise.resolve();
  const tick = () => {
    pending = sample().then(() => {
      const wait = everyMs - ((performance.now() - started) % everyMs);
      if (sampling) timer = setTimeout(tick, wait);
    });
  };
  tick();
  return {
    samples,
    counts,
    sample,
    /** Stops at once (a sample under way is awaited). */
    async stop() {
      sampling = false;
      clearTimeout(timer);
      await pending;
    },
  };
}

/** The rotation a third of the way in, the reload half-way. */
function midRun(rig: Rig, run: { started: number; durationMs: number }) {
  const atS = () => round((performance.now() - run.started) / 1000, 1);
  const at = (fraction: number) => sleep(run.durationMs * fraction);
  const rotation = at(1 / 3).then(async () => {
    const when = atS();
    const rotated = await rotateToken(rig.upstream, {
      saDir: rig.saDir,
      caPem: rig.caPem,
      old: TOKEN,
      next: ROTATED,
    });
    return { when, rotated };
  });
  const reload = at(1 / 2).then(async () => {
    const when = atS();
    return {
      ...await reloadRouting(rig.mca, { dir: rig.routingDir }),
      atS: when,
    };
  });
  return {
    async finish(result: SoakResult): Promise<void> {
      const { when, rotated } = await rotation;
      result.rotation = { ...await rotated.finish(), atS: when };
      result.reload = await reload;
    },
  };
}

/** Pushes events to the watches for the whole run (stopped by countEvents). */
function startPush(rig: Rig, f: Flags, durationMs: number) {
  const ratePerS = f.eventRate / f.watches;
  const reply = rig.upstream.send({
    cmd: "push",
    rate: ratePerS,
    durationMs,
    padBytes: f.pad,
  }, durationMs + 120_000);
  return { reply, ratePerS };
}

/** Waits (bounded) for idle pooled connections to close. */
async function waitIdle(rig: Rig, watches: number): Promise<void> {
  const idleBy = performance.now() + 20_000;
  while (
    connectionsTo(rig.port) - watches > CLIENTS && performance.now() < idleBy
  ) {
    await sleep(500);
  }
}

async function main(): Promise<number> {
  const f = flags();
  await Deno.mkdir(f.out, { recursive: true });
  const rig = await startRig(f.out);
  const result: SoakResult = {
    args: { ...f, clients: CLIENTS, kinds: f.kinds.join(",") },
    samples: [],
    loadEnd: 0,
    machine: { foreignPct: 0, stealPct: 0 },
    commit: await commit(),
  };
  let watchClients: Controlled | undefined;
  try {
    if (f.watches > 0) {
      const opened = await openWatches(rig.mca, rig.upstream, {
        count: f.watches,
        dir: rig.logs,
      });
      watchClients = opened.clients;
      result.args.watchesOpenMs = opened.openMs;
    }
    const load0 = loadSnapshot();
    const started = performance.now();
    const durationMs = f.minutes * 60_000;
    const push = watchClients ? startPush(rig, f, durationMs) : undefined;
    const sampler = startSampler(rig, f.everyMs, started);
    result.samples = sampler.samples;
    const events = midRun(rig, { started, durationMs });
    await callLoad(rig.mca, {
      ...f,
      clients: CLIENTS,
      deadline: started + durationMs,
      counts: sampler.counts,
    });
    await sampler.stop();
    result.loadEnd = result.samples.length;
    await sampler.sample();
    await events.finish(result);
    if (watchClients && push) {
      result.events = await countEvents(watchClients, rig.upstream, push);
    }
    result.machine = foreignPercent(load0, loadSnapshot());
    await waitIdle(rig, f.watches);
    await sampler.sample();
  } finally {
    await watchClients?.send({ cmd: "close" }, 5_000).catch(() => {});
    await watchClients?.stop();
    await rig.mca.stop();
    await rig.upstream.stop();
    await stopAll();
  }
  return report(result, f.out);
}

Deno.exit(await main());
