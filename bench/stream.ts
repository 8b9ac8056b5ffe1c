/**
 * A very large LIST streamed through a proxy by a raw TLS client that either
 * reads as fast as it can or reads slowly (a pause after the headers, then
 * throttled bursts). With working backpressure the proxy holds only socket
 * buffers; without it, it holds whatever the upstream sent and the client
 * has not read yet.
 *
 * @module
 */

import { memory, sampleRss, sleep } from "./procs.ts";
import { round } from "./stats.ts";

/** How the client reads. */
export interface ReadPlan {
  /** Pause after the first bytes arrive, ms (0: none). */
  initialPauseMs: number;
  /** Bytes read between pauses (0: no throttling). */
  burstBytes: number;
  burstPauseMs: number;
}

/** What one stream run measured. */
export interface StreamResult {
  label: string;
  bytes: number;
  seconds: number;
  mibPerS: number;
  complete: boolean;
  rssIdleMiB?: number;
  rssPeakMiB?: number;
  hwmMiB?: number;
  /** VmHWM − idle VmRSS. */
  growthMiB?: number;
}

/** Reads `GET path` to the end; `ca` undefined is not supported (TLS only). */
export async function streamOnce(o: {
  label: string;
  port: number;
  path: string;
  caPem: string;
  token: string;
  plan: ReadPlan;
  timeoutMs: number;
  proxyPid?: number;
}): Promise<StreamResult> {
  const idle = o.proxyPid ? memory(o.proxyPid) : undefined;
  const sampler = o.proxyPid ? sampleRss(o.proxyPid, 100) : undefined;
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: o.port,
    caCerts: [o.caPem],
  });
  const timer = setTimeout(() => conn.close(), o.timeoutMs);
  const started = performance.now();
  let bytes = 0;
  let tail = new Uint8Array(0);
  let timedOut = false;
  try {
    await writeAll(
      conn,
      new TextEncoder().encode(
        `GET ${o.path} HTTP/1.1\r\nHost: 127.0.0.1:${o.port}\r\n` +
          `Authorization: Bearer ${o.token}\r\nAccept-Encoding: identity\r\n` +
          `Connection: close\r\n\r\n`,
      ),
    );
    const buf = new Uint8Array(256 * 1024);
    let sinceBurst = 0;
    let first = true;
    while (true) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (error) {
        if (performance.now() - started >= o.timeoutMs) timedOut = true;
        else throw error;
        break;
      }
      if (n === null) break;
      bytes += n;
      tail = buf.slice(Math.max(0, n - 16), n);
      if (first) {
        first = false;
        const head = new TextDecoder().decode(buf.subarray(0, Math.min(n, 64)));
        if (!head.startsWith("HTTP/1.1 200")) {
          throw new Error(`${o.label}: ${head.split("\r\n")[0]}`);
        }
        if (o.plan.initialPauseMs > 0) await sleep(o.plan.initialPauseMs);
      }
      sinceBurst += n;
      if (o.plan.burstBytes > 0 && sinceBurst >= o.plan.burstBytes) {
        sinceBurst = 0;
        await sleep(o.plan.burstPauseMs);
      }
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const peak = sampler?.stop();
  const hwm = o.proxyPid ? memory(o.proxyPid) : undefined;
  const mib = (kib: number) => round(kib / 1024, 1);
  const end = new TextDecoder().decode(tail);
  return {
    label: o.label,
    bytes,
    seconds: round(seconds, 2),
    mibPerS: round(bytes / 1048576 / seconds, 1),
    complete: !timedOut && end.endsWith("0\r\n\r\n"),
    rssIdleMiB: idle && mib(idle.rssKiB),
    rssPeakMiB: peak && mib(peak.peakKiB),
    hwmMiB: hwm && mib(hwm.hwmKiB),
    growthMiB: idle && hwm && mib(hwm.hwmKiB - idle.rssKiB),
  };
}

async function writeAll(conn: Deno.TlsConn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}
