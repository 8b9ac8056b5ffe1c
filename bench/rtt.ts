/**
 * An API server "behind a link": a relay on loopback (bench/rtt_relay, Go)
 * that delays every byte by half the round-trip time each way, so the load
 * matrix can run with the 1 ms and 5 ms RTT users see between a Pod and its
 * API server. This kernel has no `sch_netem`, so `tc netem` on a veth pair
 * was not possible; the delay is made in user space, traffic stays on
 * loopback. Bandwidth is not limited, and the relay answers TCP's own
 * handshake at once (only the bytes after it are delayed).
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCommand, spawn } from "./procs.ts";

const MODULE = fileURLToPath(new URL("./rtt_relay/", import.meta.url));

/** A running relay. */
export interface Relay {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Builds the relay (once per output dir) and returns the binary's path. */
export async function buildRelay(dir: string): Promise<string> {
  const bin = join(dir, "rtt-relay");
  try {
    await Deno.stat(bin);
    return bin;
  } catch {
    // not built yet
  }
  const built = await runCommand("go", ["build", "-o", bin, "."], 300_000, {
    cwd: MODULE,
    env: { CGO_ENABLED: "0" },
  });
  if (built.code !== 0) {
    throw new Error(`building bench/rtt_relay failed: ${built.stderr.trim()}`);
  }
  return bin;
}

/** Starts a relay to `127.0.0.1:port` adding `rttMs` of round trip. */
export async function startRelay(
  bin: string,
  options: { port: number; rttMs: number; logBase: string },
): Promise<Relay> {
  const proc = spawn(`rtt-relay-${options.rttMs}ms`, bin, {
    args: ["-to", `127.0.0.1:${options.port}`, "-rtt", `${options.rttMs}ms`],
    logBase: options.logBase,
  });
  const line = await proc.waitForLine((l) => /^\d+$/.test(l.trim()), 10_000);
  return {
    port: Number(line.trim()),
    pid: proc.pid,
    stop: () => proc.stop(),
  };
}
