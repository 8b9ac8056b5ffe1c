/**
 * What the soak (bench/soak.ts) does beside its GET/LIST mix: many watches
 * held open through the run with events pushed at a bounded rate and
 * counted end to end, one rotation of the real service-account token and
 * one reload of the routing file, each done the way the kubelet does it (a
 * `..data` symlink swap in a projected volume) and each checked from the
 * outside: the upstream's record of Authorization headers, mca's log line
 * and its `mca_routing_reloads_total` metric.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { type Controlled, startControlled } from "./control.ts";
import { type Mca, writeFakeSaDir } from "./mca.ts";
import { sleep } from "./procs.ts";
import { round } from "./stats.ts";
import { writeProjectedVolume } from "../tests/support/cluster.ts";

const CLIENTS = fileURLToPath(new URL("./watch_clients.ts", import.meta.url));

/** The routing file mca starts with: every call stays on `local`. */
export const ROUTING_V1 = "discovery: local\ndefault: local\nrules: []\n";
/**
 * The reloaded version: still everything on `local`, plus a rule for a
 * namespace the soak never calls, so the log line's rule count tells the
 * versions apart.
 */
export const ROUTING_V2 = "discovery: local\ndefault: local\nrules:\n" +
  "  - name: soak-reloaded\n    match:\n      namespaces: [soak-unused]\n" +
  "    cluster: local\n";

/** Opens `count` tracked watches through mca; throws if any failed. */
export async function openWatches(
  mca: Mca,
  upstream: Controlled,
  options: { count: number; dir: string },
): Promise<{ clients: Controlled; openMs: number }> {
  const clients = await startControlled(
    "soak-watch-clients",
    CLIENTS,
    [JSON.stringify({
      port: mca.port,
      path: "/api/v1/namespaces/default/configmaps?watch=1",
      caPem: mca.appCaPem,
      token: "placeholder",
      count: options.count,
      parallel: 32,
      track: true,
    })],
    join(options.dir, "watch-clients"),
  );
  const opened = await clients.send({ cmd: "open" }, 300_000);
  if (Number(opened.failed) > 0) {
    await clients.stop();
    throw new Error(
      `${opened.failed} of ${options.count} watches failed to open: ${opened.firstError}`,
    );
  }
  await upstream.send(
    { cmd: "waitWatches", n: options.count, timeoutMs: 120_000 },
    130_000,
  );
  return { clients, openMs: Number(opened.ms) };
}

/** Events pushed and received, counted per watch. */
export interface EventCount {
  pushed: number;
  pushRatePerS: number;
  watches: number;
  /** Writes the upstream made (Σ over pushes of the watches open then). */
  upstreamWrites: number;
  minUpstreamWatches: number;
  expected: number;
  received: number;
  lost: number;
  watchesWithLoss: number;
  duplicates: number;
  outOfOrder: number;
  malformed: number;
  ended: number;
  reopened: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  pushMaxLateMs: number;
}

/**
 * Stops the push, waits (bounded) for every event to arrive and counts what
 * each watch received against what the upstream sent.
 */
export async function countEvents(
  clients: Controlled,
  upstream: Controlled,
  push: { reply: Promise<Record<string, unknown>>; ratePerS: number },
): Promise<EventCount> {
  await upstream.send({ cmd: "stopPush" }, 10_000);
  const pushed = await push.reply;
  const sent = Number(pushed.sent);
  const watches = Number(pushed.watches);
  for (let i = 0; i < 120; i++) {
    const { events } = await clients.send({ cmd: "count" }, 10_000);
    if (Number(events) >= sent * watches) break;
    await sleep(250);
  }
  const t = await clients.send({ cmd: "tally", sent }, 30_000);
  const latency = await clients.send({ cmd: "report" }, 30_000);
  const ms = (v: unknown) => round(Number(v), 2);
  return {
    pushed: sent,
    pushRatePerS: round(push.ratePerS, 3),
    watches: Number(t.watches),
    upstreamWrites: Number(pushed.watchWrites),
    minUpstreamWatches: Number(pushed.minWatches),
    expected: Number(t.expected),
    received: Number(t.received),
    lost: Number(t.lost),
    watchesWithLoss: Number(t.watchesWithLoss),
    duplicates: Number(t.duplicates),
    outOfOrder: Number(t.outOfOrder),
    malformed: Number(t.malformed),
    ended: Number(t.ended),
    reopened: Number(t.reopened),
    p50Ms: ms(latency.p50Ms),
    p99Ms: ms(latency.p99Ms),
    maxMs: ms(latency.maxMs),
    pushMaxLateMs: Number(pushed.maxLateMs),
  };
}

/** What the token rotation showed. */
export interface Rotation {
  atS: number;
  /** Swap of `..data` → first upstream request carrying the new token. */
  newTokenSeenMs: number;
  /** Requests with the old token after it was retired upstream (want 0). */
  oldAfterRetire: number;
  newTokenRequests: number;
  ok: boolean;
}

/** Requests the upstream received per bearer token so far. */
async function byToken(upstream: Controlled): Promise<Record<string, number>> {
  const { byToken } = await upstream.send({ cmd: "auth" }, 10_000);
  return byToken as Record<string, number>;
}

/**
 * Rotates the real token: the upstream accepts both, the projected volume
 * swaps to the new one, and once mca's first request with it arrives (and
 * a grace second for calls already sent) the old one is retired upstream,
 * as an expired token would be. `finish` reads the record at the end.
 */
export async function rotateToken(
  upstream: Controlled,
  options: { saDir: string; caPem: string; old: string; next: string },
): Promise<{ finish(): Promise<Rotation> }> {
  const { old, next } = options;
  await upstream.send({ cmd: "acceptTokens", tokens: [old, next] }, 10_000);
  const swapped = performance.now();
  await writeFakeSaDir(options.saDir, next, options.caPem);
  let seenMs = NaN;
  while (performance.now() - swapped < 30_000) {
    if ((await byToken(upstream))[next] > 0) {
      seenMs = Math.round(performance.now() - swapped);
      break;
    }
    await sleep(100);
  }
  await sleep(1000);
  await upstream.send({ cmd: "acceptTokens", tokens: [next] }, 10_000);
  const oldAtRetire = (await byToken(upstream))[old] ?? 0;
  return {
    async finish() {
      const end = await byToken(upstream);
      const oldAfterRetire = (end[old] ?? 0) - oldAtRetire;
      return {
        atS: 0,
        newTokenSeenMs: seenMs,
        oldAfterRetire,
        newTokenRequests: end[next] ?? 0,
        ok: Number.isFinite(seenMs) && oldAfterRetire === 0 &&
          (end[next] ?? 0) > 0,
      };
    },
  };
}

/** `mca_routing_reloads_total` by result, scraped from mca's /metrics. */
async function reloadCounts(
  mca: Mca,
): Promise<{ loaded: number; rejected: number }> {
  const text = await (await fetch(
    `http://127.0.0.1:${mca.metricsPort}/metrics`,
  )).text();
  const count = (result: string) => {
    const m = text.match(
      new RegExp(
        `^mca_routing_reloads_total\\{result="${result}"\\} (\\S+)`,
        "m",
      ),
    );
    return m ? Number(m[1]) : 0;
  };
  return { loaded: count("loaded"), rejected: count("rejected") };
}

/** What the routing reload showed. */
export interface Reload {
  atS: number;
  /** Swap of `..data` → mca's "routing configuration loaded" line. */
  appliedMs: number;
  /** The rule count in that line (the new version has 1). */
  rules: number;
  loadedDelta: number;
  rejectedDelta: number;
  ok: boolean;
}

/** Writes the new routing version and waits for mca to report it. */
export async function reloadRouting(
  mca: Mca,
  options: { dir: string },
): Promise<Reload> {
  const before = await reloadCounts(mca);
  const line = mca.proc.waitForLine(
    (l) => l.includes('"routing configuration'),
    20_000,
  );
  const swapped = performance.now();
  await writeProjectedVolume(options.dir, { "routing.yaml": ROUTING_V2 });
  const logged = JSON.parse(await line);
  const appliedMs = Math.round(performance.now() - swapped);
  const after = await reloadCounts(mca);
  const loadedDelta = after.loaded - before.loaded;
  const rejectedDelta = after.rejected - before.rejected;
  const rules = Number(logged.rules);
  return {
    atS: 0,
    appliedMs,
    rules,
    loadedDelta,
    rejectedDelta,
    ok: String(logged.msg).includes("loaded") && rules === 1 &&
      loadedDelta === 1 && rejectedDelta === 0,
  };
}
