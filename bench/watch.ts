/**
 * Many concurrent watches, events pushed upstream at a fixed rate: the
 * delivered-event latency (upstream write → client read, both stamped with
 * wall-clock time) and, through mca, mca's RSS.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { type Controlled, startControlled } from "./control.ts";
import { memory, sampleRss, sleep } from "./procs.ts";
import { round } from "./stats.ts";

const CLIENTS = fileURLToPath(new URL("./watch_clients.ts", import.meta.url));

/** Options of {@linkcode runWatches}. */
export interface WatchOptions {
  label: string;
  upstream: Controlled;
  port: number;
  caPem: string;
  token: string;
  count: number;
  /** Events per second pushed upstream (each reaches every watch). */
  rate: number;
  durationS: number;
  padBytes: number;
  /** mca's pid, to sample its RSS; undefined for the direct baseline. */
  proxyPid?: number;
  dir: string;
}

/** What one watch run measured. */
export interface WatchResult {
  label: string;
  watches: number;
  openMs: number;
  rate: number;
  eventsPushed: number;
  eventsExpected: number;
  eventsDelivered: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  pushMaxLateMs: number;
  rssIdleMiB?: number;
  rssOpenMiB?: number;
  rssPeakMiB?: number;
  /** Once every event has arrived: what the flow left behind. */
  rssAfterMiB?: number;
  hwmMiB?: number;
}

/** Opens the watches, pushes events, reports latency and RSS. */
export async function runWatches(o: WatchOptions): Promise<WatchResult> {
  const mib = (kib: number) => round(kib / 1024, 1);
  const idle = o.proxyPid ? memory(o.proxyPid) : undefined;
  const clients = await startControlled(
    `watch-clients-${o.label}`,
    CLIENTS,
    [JSON.stringify({
      port: o.port,
      path: "/api/v1/namespaces/default/configmaps?watch=1",
      caPem: o.caPem,
      token: o.token,
      count: o.count,
      parallel: 32,
    })],
    join(o.dir, `watch-clients-${o.label}`),
  );
  try {
    const opened = await clients.send({ cmd: "open" }, 180_000);
    if (Number(opened.failed) > 0) {
      throw new Error(
        `${o.label}: ${opened.failed} of ${o.count} watches failed to open: ${opened.firstError}`,
      );
    }
    await o.upstream.send(
      { cmd: "waitWatches", n: o.count, timeoutMs: 60_000 },
      70_000,
    );
    await sleep(500);
    const afterOpen = o.proxyPid ? memory(o.proxyPid) : undefined;
    const sampler = o.proxyPid ? sampleRss(o.proxyPid) : undefined;
    const pushed = await o.upstream.send({
      cmd: "push",
      rate: o.rate,
      durationMs: o.durationS * 1000,
      padBytes: o.padBytes,
    }, o.durationS * 1000 + 60_000);
    // Let the last events arrive (bounded: a stuck proxy shows as a
    // shortfall), then take percentiles over every event.
    const expected = Number(pushed.sent) * o.count;
    for (let i = 0; i < 40; i++) {
      const { events } = await clients.send({ cmd: "count" }, 10_000);
      if (Number(events) >= expected) break;
      await sleep(250);
    }
    const report = await clients.send({ cmd: "report" }, 10_000);
    const peak = sampler?.stop();
    const hwm = o.proxyPid ? memory(o.proxyPid) : undefined;
    return {
      label: o.label,
      watches: o.count,
      openMs: Number(opened.ms),
      rate: o.rate,
      eventsPushed: Number(pushed.sent),
      eventsExpected: expected,
      eventsDelivered: Number(report.events),
      p50Ms: round(Number(report.p50Ms), 2),
      p90Ms: round(Number(report.p90Ms), 2),
      p99Ms: round(Number(report.p99Ms), 2),
      maxMs: round(Number(report.maxMs), 1),
      pushMaxLateMs: Number(pushed.maxLateMs),
      rssIdleMiB: idle && mib(idle.rssKiB),
      rssOpenMiB: afterOpen && mib(afterOpen.rssKiB),
      rssPeakMiB: peak && mib(peak.peakKiB),
      rssAfterMiB: hwm && mib(hwm.rssKiB),
      hwmMiB: hwm && mib(hwm.hwmKiB),
    };
  } finally {
    await clients.send({ cmd: "close" }, 5_000).catch(() => {});
    await clients.stop();
    await o.upstream.send({ cmd: "closeWatches" }, 10_000).catch(() => {});
  }
}
