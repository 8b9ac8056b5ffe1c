/**
 * Child processes of the benchmark: every one is registered here so that a
 * run, however it ends (success, error, Ctrl-C), leaves nothing behind.
 * Also reads memory and CPU time of a process from /proc.
 *
 * @module
 */

/** A spawned child whose output goes to log files. */
export interface Proc {
  name: string;
  pid: number;
  child: Deno.ChildProcess;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number>;
  /** Resolves with the first stdout line for which `match` is true. */
  waitForLine(
    match: (line: string) => boolean,
    timeoutMs: number,
  ): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once exited. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Proc>();
const transient = new Set<Deno.ChildProcess>();

/** Options of {@linkcode spawn}. */
export interface SpawnOptions {
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** stdout and stderr are appended here (stdout to `<logBase>.out`, ...). */
  logBase: string;
  /** Pipe stdin (for control commands); default closed. */
  stdin?: boolean;
  /**
   * Stop copying stdout to the log after this many bytes (the pipe is still
   * drained, as a container runtime would): mca's call log under load.
   */
  stdoutLogLimit?: number;
}

/** Spawns `cmd`, registered for {@linkcode stopAll}. */
export function spawn(
  name: string,
  cmd: string,
  options: SpawnOptions,
): Proc {
  const child = new Deno.Command(cmd, {
    args: options.args,
    env: { DENO_NO_UPDATE_CHECK: "1", ...options.env },
    cwd: options.cwd,
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const waiters = new Set<
    { match: (l: string) => boolean; resolve: (l: string) => void }
  >();
  const out = Deno.openSync(`${options.logBase}.out`, {
    create: true,
    append: true,
  });
  const err = Deno.openSync(`${options.logBase}.err`, {
    create: true,
    append: true,
  });
  const decoder = new TextDecoder();
  let partial = "";
  const pumps = [
    pump(child.stdout, out, options.stdoutLogLimit ?? Infinity, (chunk) => {
      // Only scan lines while someone waits: logs under load cost nothing.
      if (waiters.size === 0) {
        partial = "";
        return;
      }
      partial += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        for (const w of [...waiters]) {
          if (w.match(line)) {
            waiters.delete(w);
            w.resolve(line);
          }
        }
      }
    }),
    pump(child.stderr, err, Infinity),
  ];
  const exited = child.status.then(async (s) => {
    await Promise.allSettled(pumps);
    live.delete(proc);
    return s.code;
  });
  const proc: Proc = {
    name,
    pid: child.pid,
    child,
    exited,
    waitForLine(match, timeoutMs) {
      const { promise, resolve, reject } = Promise.withResolvers<string>();
      const w = { match, resolve };
      waiters.add(w);
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(
          new Error(
            `${name}: no matching output line within ${timeoutMs} ms (logs: ${options.logBase}.{out,err})`,
          ),
        );
      }, timeoutMs);
      exited.then((code) => {
        if (waiters.delete(w)) {
          reject(
            new Error(
              `${name} exited with code ${code} before the expected line (logs: ${options.logBase}.{out,err})`,
            ),
          );
        }
      });
      return promise.finally(() => clearTimeout(timer));
    },
    async stop(graceMs = 3000) {
      if (!live.has(proc)) return;
      signal(child, "SIGTERM");
      const timer = setTimeout(() => signal(child, "SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  live.add(proc);
  return proc;
}

function signal(child: Deno.ChildProcess, sig: Deno.Signal): void {
  try {
    child.kill(sig);
  } catch {
    // already gone
  }
}

async function pump(
  stream: ReadableStream<Uint8Array>,
  file: Deno.FsFile,
  limit: number,
  onChunk?: (chunk: Uint8Array) => void,
): Promise<void> {
  let logged = 0;
  try {
    for await (const chunk of stream) {
      onChunk?.(chunk);
      if (logged >= limit) continue;
      logged += chunk.length;
      let at = 0;
      while (at < chunk.length) at += await file.write(chunk.subarray(at));
    }
  } finally {
    file.close();
  }
}

/** Stops every registered child still running. */
export async function stopAll(): Promise<void> {
  for (const child of transient) signal(child, "SIGKILL");
  await Promise.allSettled([...live].map((p) => p.stop(2000)));
}

/** Names of children still running (for a final sanity check). */
export function liveNames(): string[] {
  return [...live].map((p) => `${p.name}(${p.pid})`);
}

/** Memory of a process, in KiB, from /proc/<pid>/status. */
export interface Memory {
  rssKiB: number;
  hwmKiB: number;
}

/** Reads VmRSS and VmHWM of `pid`. */
export function memory(pid: number): Memory {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const field = (name: string) => {
    const m = text.match(new RegExp(`^${name}:\\s+(\\d+) kB`, "m"));
    if (!m) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(m[1]);
  };
  return { rssKiB: field("VmRSS"), hwmKiB: field("VmHWM") };
}

/** Peak VmRSS seen while sampling every `everyMs` until `stop()` is called. */
export function sampleRss(pid: number, everyMs = 200) {
  let peak = 0;
  let last = 0;
  const tick = () => {
    try {
      last = memory(pid).rssKiB;
      peak = Math.max(peak, last);
    } catch {
      // process gone
    }
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop(): { peakKiB: number; lastKiB: number } {
      clearInterval(timer);
      tick();
      return { peakKiB: peak, lastKiB: last };
    },
  };
}

const CLOCK_TICKS = 100; // getconf CLK_TCK on Linux x86_64

/** User+system CPU seconds used so far by `pid` and its listed children. */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      // Fields after the ")" of the command name; utime and stime are 14, 15.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // process gone
    }
  }
  return ticks / CLOCK_TICKS;
}

/** Direct children of `pid` (e.g. nginx workers). */
export function childPids(pid: number): number[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim()
      .split(/\s+/).filter((s) => s !== "").map(Number);
  } catch {
    return [];
  }
}

/** Waits until a TCP connection to host:port succeeds. */
export async function waitForPort(
  host: string,
  port: number,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const conn = await Deno.connect({ hostname: host, port });
      conn.close();
      return;
    } catch {
      await sleep(20);
    }
  }
  throw new Error(
    `${what}: ${host}:${port} not accepting after ${timeoutMs} ms`,
  );
}

/** A free TCP port on 127.0.0.1 (racy by nature; used right away). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs a command to completion with a time bound; returns stdout/stderr. */
export async function runCommand(
  cmd: string,
  args: string[],
  timeoutMs: number,
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  transient.add(child);
  const timer = setTimeout(() => signal(child, "SIGKILL"), timeoutMs);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
    transient.delete(child);
  }
}
