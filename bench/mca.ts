/**
 * `mca` as a separate process (`deno run -A main.ts`), so that its RSS and
 * CPU are its own, with its JSON call log going through a pipe into a file
 * (as in a Pod, where stdout is a pipe to the container runtime).
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Proc, spawn } from "./procs.ts";
import { writeProjectedVolume } from "../tests/support/cluster.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
let main = fileURLToPath(new URL("../main.ts", import.meta.url));

/**
 * The V8 flags mca ships with (the Dockerfile's `deno compile`, `deno task
 * start`, the test image's launcher; ADR 0023), so the bench measures what
 * runs in a Pod. `tests/v8_flags_test.ts` keeps the copies equal.
 */
export const SHIPPED_V8_FLAGS = ["--max-semi-space-size=8"];

/**
 * Benchmarks another copy of mca (e.g. a patched one under tmp/). A
 * relative path is taken from the current directory: mca runs in its own.
 */
export function useMain(path: string): void {
  main = resolve(path);
}

/** A running mca. */
export interface Mca {
  proc: Proc;
  pid: number;
  port: number;
  /** PEM of the CA apps trust (`<mca-sa-dir>/ca.crt`). */
  appCaPem: string;
  /** `startupMs` from the ready line (mca's own clock). */
  selfStartupMs: number;
  /** Spawn → ready line, as seen by the parent. */
  readyMs: number;
  /** The /metrics port, when started with `metrics: true`. */
  metricsPort?: number;
  stop(): Promise<void>;
}

/** Where mca finds its upstream. */
export interface McaTarget {
  /** The real service-account dir (kubelet layout). */
  realSaDir: string;
  host: string;
  port: number;
}

/** Options of {@linkcode startMca}. */
export interface McaOptions {
  /** Directory for mca-sa/, state/ and logs. */
  dir: string;
  name: string;
  /** Reuse this state dir (a restart); default a fresh one under `dir`. */
  stateDir?: string;
  /** Extra `deno run` flags, e.g. `--cpu-prof`. */
  denoFlags?: string[];
  /** V8 flags; {@linkcode SHIPPED_V8_FLAGS} by default, `[]` for V8's own. */
  v8Flags?: string[];
  /** Extra mca flags, e.g. `--audit-policy=FILE`. */
  args?: string[];
  readyTimeoutMs?: number;
  /** Serve /metrics on 127.0.0.1 (a free port); off by default. */
  metrics?: boolean;
  /** Extra environment, e.g. the `OTEL_*` variables that turn tracing on. */
  env?: Record<string, string>;
  /** Another program taking mca's command line (a `bench/repro/` relay). */
  main?: string;
  /**
   * A command that runs `deno` (e.g. `["valgrind", "--tool=callgrind"]`):
   * the pid is then the wrapper's, which valgrind shares with its guest.
   */
  wrap?: string[];
}

/** `deno run` arguments that set `flags` (none for an empty list). */
export function v8FlagArgs(flags: string[]): string[] {
  return flags.length ? [`--v8-flags=${flags.join(",")}`] : [];
}

/** Lays out a kubelet-style service-account dir for the fake upstream. */
export async function writeFakeSaDir(
  dir: string,
  token: string,
  caPem: string,
): Promise<void> {
  await writeProjectedVolume(dir, {
    token,
    "ca.crt": caPem,
    namespace: "default",
  });
}

/** A loopback port free now (for mca's metrics port, which has no "any"). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Spawns mca and waits for its ready line. */
export async function startMca(
  target: McaTarget,
  options: McaOptions,
): Promise<Mca> {
  const dir = join(options.dir, options.name);
  const mcaSaDir = join(dir, "mca-sa");
  const stateDir = options.stateDir ?? join(dir, "state");
  await Deno.mkdir(mcaSaDir, { recursive: true });
  const started = performance.now();
  const metricsPort = options.metrics ? freePort() : 0;
  const wrap = options.wrap ?? [];
  const proc = spawn(options.name, wrap[0] ?? Deno.execPath(), {
    args: [
      ...(wrap.length ? [...wrap.slice(1), Deno.execPath()] : []),
      "run",
      "-A",
      ...(options.denoFlags ?? []),
      ...v8FlagArgs(options.v8Flags ?? SHIPPED_V8_FLAGS),
      options.main ?? main,
      "--sa-dir",
      target.realSaDir,
      "--mca-sa-dir",
      mcaSaDir,
      "--state-dir",
      stateDir,
      "--listen",
      "127.0.0.1",
      "--port",
      "0",
      ...(options.args ?? []),
      "--metrics-listen",
      "127.0.0.1",
      "--metrics-port", // 0 = off; mca's own default would be 0.0.0.0
      String(metricsPort),
    ],
    cwd: dirname(options.main ?? main) || ROOT,
    env: {
      KUBERNETES_SERVICE_HOST: target.host,
      KUBERNETES_SERVICE_PORT: String(target.port),
      ...options.env,
    },
    logBase: join(options.dir, options.name),
    stdoutLogLimit: 4 << 20,
  });
  let line: string;
  try {
    line = await proc.waitForLine(
      (l) => l.includes('"msg":"ready"'),
      options.readyTimeoutMs ?? 30_000,
    );
  } catch (error) {
    await proc.stop();
    throw error;
  }
  const readyMs = performance.now() - started;
  const ready = JSON.parse(line);
  const listen = String(ready.listen?.[0] ?? "");
  const port = Number(listen.slice(listen.lastIndexOf(":") + 1));
  if (!port) {
    await proc.stop();
    throw new Error(`${options.name}: ready line names no port: ${line}`);
  }
  return {
    proc,
    pid: proc.pid,
    port,
    appCaPem: await Deno.readTextFile(join(mcaSaDir, "ca.crt")),
    selfStartupMs: Number(ready.startupMs),
    readyMs,
    metricsPort: metricsPort || undefined,
    stop: () => proc.stop(),
  };
}
