/**
 * Parent side of a child process driven by JSON lines (bench/upstream_proc.ts,
 * bench/watch_clients.ts): send a command with an id, await the line that
 * answers it.
 *
 * @module
 */

import { type Proc, spawn } from "./procs.ts";

const DENO = Deno.execPath();

/** A Deno child speaking JSON lines. */
export interface Controlled {
  proc: Proc;
  /** The first line it printed (`{"msg":"ready",...}`), parsed. */
  ready: Record<string, unknown>;
  /** Sends a command; resolves with the parsed reply (throws if not ok). */
  send(
    cmd: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Starts `deno run -A <script> ...args` and waits for its ready line. */
export async function startControlled(
  name: string,
  script: string,
  args: string[],
  logBase: string,
  readyTimeoutMs = 30_000,
  v8Flags: string[] = [],
): Promise<Controlled> {
  const proc = spawn(name, DENO, {
    args: [
      "run",
      "-A",
      ...(v8Flags.length ? [`--v8-flags=${v8Flags.join(",")}`] : []),
      script,
      ...args,
    ],
    logBase,
    stdin: true,
  });
  const ready = JSON.parse(
    await proc.waitForLine(
      (l) => l.includes('"msg":"ready"'),
      readyTimeoutMs,
    ),
  );
  const writer = proc.child.stdin.getWriter();
  const encoder = new TextEncoder();
  let nextId = 1;
  return {
    proc,
    ready,
    async send(cmd, timeoutMs) {
      const id = nextId++;
      const tag = `"id":${id},`;
      const answer = proc.waitForLine((l) => l.includes(tag), timeoutMs);
      await writer.write(encoder.encode(JSON.stringify({ id, ...cmd }) + "\n"));
      const parsed = JSON.parse(await answer);
      if (!parsed.ok) {
        throw new Error(`${name}: ${cmd.cmd} failed: ${parsed.error}`);
      }
      return parsed;
    },
    async stop() {
      try {
        await writer.close();
      } catch {
        // already closed
      }
      await proc.stop();
    },
  };
}
