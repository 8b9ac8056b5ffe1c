/**
 * The soak's GET/LIST mix (bench/soak.ts): one call per TLS connection, some
 * read to the end, some abandoned half-way, and a count of mca's
 * connections to the upstream read from /proc.
 *
 * @module
 */

import type { Mca } from "./mca.ts";
import { sleep } from "./procs.ts";

/** Established TCP connections to `port` on loopback (mca → upstream). */
export function connectionsTo(port: number): number {
  let n = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== "01") continue; // 01 = ESTABLISHED
      const remotePort = parseInt(f[2].split(":")[1], 16);
      if (remotePort === port) n++;
    }
  }
  return n;
}

/**
 * One call of the mix over its own TLS connection; never throws. Resolves
 * false when a call that is read to the end did not get a 200 (or the
 * connection failed).
 */
export async function oneCall(mca: Mca, kind: number): Promise<boolean> {
  let conn: Deno.TlsConn | undefined;
  try {
    conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: mca.port,
      caCerts: [mca.appCaPem],
    });
    const w = (s: string) => conn!.write(new TextEncoder().encode(s));
    const head = (method: string, path: string, extra = "") =>
      `${method} ${path} HTTP/1.1\r\nhost: localhost\r\n` +
      `authorization: Bearer placeholder\r\n${extra}connection: close\r\n\r\n`;
    if (kind === 0) {
      await w(head("GET", "/api/v1/namespaces/default/configmaps/soak"));
    } else if (kind === 1) {
      await w(head("GET", "/big?bytes=262144"));
    } else if (kind === 2) {
      // A LIST abandoned after its first bytes.
      await w(head("GET", "/big?bytes=4194304"));
      await conn.read(new Uint8Array(16384));
      return true;
    } else {
      // A body abandoned half-way (POST, or GET with a body).
      const method = kind === 3 ? "POST" : "GET";
      await w(head(
        method,
        "/api/v1/namespaces/default/configmaps",
        "content-type: application/json\r\ncontent-length: 200000\r\n",
      ));
      await w("x".repeat(40_000));
      return true;
    }
    const buf = new Uint8Array(65536);
    let first = "";
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      if (first === "") first = new TextDecoder().decode(buf.subarray(0, n));
    }
    return first.startsWith("HTTP/1.1 200");
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch {
      // already closed
    }
  }
}

/** How {@linkcode callLoad} runs and where it counts. */
export interface LoadOptions {
  clients: number;
  /** Calls per second, at most, over all clients. */
  rate: number;
  /** Which calls of the mix (0-4), in turn. */
  kinds: number[];
  maxRequests: number;
  /** `performance.now()` at which to stop. */
  deadline: number;
  counts: { requests: number; failed: number };
}

/** The GET/LIST mix until the deadline or `maxRequests`. */
export async function callLoad(mca: Mca, o: LoadOptions): Promise<void> {
  // Every call is a new connection; past ~400/s the loopback's ephemeral
  // ports run out (TIME_WAIT) and the harness, not mca, starts failing.
  const gapMs = 1000 / o.rate;
  const c = o.counts;
  let nextAt = performance.now();
  await Promise.all(
    Array.from({ length: o.clients }, async (_, client) => {
      while (performance.now() < o.deadline && c.requests < o.maxRequests) {
        nextAt = Math.max(nextAt + gapMs, performance.now());
        const wait = nextAt - performance.now();
        if (wait > 0) await sleep(wait);
        const ok = await oneCall(
          mca,
          o.kinds[(c.requests + client) % o.kinds.length],
        );
        c.requests++;
        if (!ok) c.failed++;
      }
    }),
  );
}
