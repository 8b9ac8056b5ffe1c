/**
 * Running `mca` and SDK programs in simulated containers of an injected Pod
 * (see `pod.ts`), shared by the real-tier tests (`tests/e2e/`).
 *
 * - {@linkcode buildSdk} builds (or finds cached) one SDK of
 *   `tests/e2e/sdk/<name>/` and returns the command its `build.sh` printed;
 * - {@linkcode mcaContainer}, {@linkcode startMca}, {@linkcode waitReady} and
 *   {@linkcode stopMca} run `mca` (`deno run main.ts`) as the Pod's `mca`
 *   container, collecting its log lines;
 * - {@linkcode callLines} picks the `api call` lines out of a log.
 *
 * ```ts
 * const mca = startMca(pod, mcaContainer(cluster, volumes, home, netns, args), log);
 * await waitReady(mca, () => spawnInPod(pod, "mca", probe).output());
 * try { ... } finally { await stopMca(mca); }
 * ```
 *
 * @module
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Cluster } from "./cluster.ts";
import { spawnInPod } from "./pod.ts";
import {
  MCA_SA_PATH,
  MCA_STATE_PATH,
  SA_PATH,
} from "../../lib/inject/pod_spec.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SDK_DIR = join(ROOT, "tests", "e2e", "sdk");
const MAIN = join(ROOT, "main.ts");

/** Bound on one SDK's `build.sh` (a cold build downloads and compiles). */
export const BUILD_TIMEOUT_MS = 30 * 60_000;
/** Bound on `mca` passing its startup probe. */
export const READY_TIMEOUT_MS = 60_000;

const decoder = new TextDecoder();

/** Lines of a byte stream, each passed to `onLine` as it arrives. */
export async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      onLine(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  }
  if (buffered !== "") onLine(buffered);
}

/**
 * `promise`, or a rejection naming `what` after `ms` (calling `onTimeout`
 * first, e.g. to kill the process the promise waits for).
 */
export async function withDeadline<T>(
  what: string,
  ms: number,
  promise: Promise<T>,
  onTimeout: () => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what}: no result within ${ms / 1000} s`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What an SDK's `build.sh` reports on its last stdout line. */
export interface Built {
  command: string[];
  version: string;
}

/**
 * Runs `tests/e2e/sdk/<name>/build.sh` (or `<dir>/build.sh`: a test's own
 * program built the same way; its progress goes to stderr) and returns the
 * command and version it printed. `args` pick another target of the same
 * script (client-go's `node`: the node tier's app, same module).
 */
export async function buildSdk(
  name: string,
  options: { dir?: string; args?: string[] } = {},
): Promise<Built> {
  const script = join(options.dir ?? join(SDK_DIR, name), "build.sh");
  if (!existsSync(script)) {
    throw new Error(`${script} is missing: this SDK has no program yet`);
  }
  const child = new Deno.Command("bash", {
    args: [script, ...(options.args ?? [])],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = await withDeadline(
    `${name}/build.sh`,
    BUILD_TIMEOUT_MS,
    child.output(),
    () => child.kill("SIGKILL"),
  );
  if (out.code !== 0) {
    throw new Error(`${script} exited with code ${out.code} (output above)`);
  }
  const lines = decoder.decode(out.stdout).trim().split("\n");
  const last = lines[lines.length - 1] ?? "";
  let built: Built;
  try {
    built = JSON.parse(last);
  } catch {
    throw new Error(
      `${script}: last stdout line is not JSON: ${JSON.stringify(last)}`,
    );
  }
  if (
    !Array.isArray(built.command) || built.command.length === 0 ||
    !built.command.every((a) => typeof a === "string") ||
    typeof built.version !== "string"
  ) {
    throw new Error(`${script}: bad result line ${last}`);
  }
  return built;
}

/** `mca` running in its simulated container. */
export interface McaProcess {
  child: Deno.ChildProcess;
  /** stdout lines (mca's JSON log), in order, as they arrive. */
  lines: string[];
  /** stderr lines. */
  stderr: string[];
  exited: Promise<Deno.CommandStatus>;
  /** Resolves once both streams have been read to their end. */
  done: Promise<void>;
  exit?: Deno.CommandStatus;
}

/** The host's Deno module cache, shared with `mca`'s container. */
export function hostDenoDir(): string {
  return Deno.env.get("DENO_DIR") ??
    join(
      Deno.env.get("XDG_CACHE_HOME") ??
        join(Deno.env.get("HOME") ?? "/root", ".cache"),
      "deno",
    );
}

/**
 * The proxy flags of `mca` in its simulated container: the standard paths
 * (the volumes are mounted there) and 127.0.0.1:6443, plus `extra`.
 */
export function mcaProxyArgs(extra: string[] = []): string[] {
  return [
    "--sa-dir",
    SA_PATH,
    "--mca-sa-dir",
    MCA_SA_PATH,
    "--state-dir",
    MCA_STATE_PATH,
    "--listen",
    "127.0.0.1",
    "--port",
    "6443",
    ...extra,
  ];
}

/** How the mca container runs `mca <args>` (options of `spawnInPod`). */
export function mcaContainer(
  cluster: Cluster,
  volumes: Record<string, string>,
  home: string,
  netns: string,
  args: string[],
) {
  return {
    volumes,
    command: [Deno.execPath(), "run", "-A", MAIN, ...args],
    serviceEnv: cluster.serviceEnv(),
    home,
    netns,
    // The image would carry mca compiled; here Deno runs main.ts with the
    // host's module cache.
    imageEnv: { DENO_DIR: hostDenoDir(), NO_COLOR: "1" },
  };
}

/**
 * Spawns container `mca` of `pod`; its stdout lines go to `proc.lines` and
 * `logFile`, its stderr lines to `proc.stderr` and `logFile.stderr`.
 */
export function startMca(
  pod: Record<string, unknown>,
  container: ReturnType<typeof mcaContainer>,
  logFile: string,
): McaProcess {
  const child = spawnInPod(pod, "mca", container, {
    stdout: "piped",
    stderr: "piped",
  });
  const proc: McaProcess = {
    child,
    lines: [],
    stderr: [],
    exited: child.status,
    done: Promise.resolve(),
  };
  proc.exited = child.status.then((s) => (proc.exit = s));
  proc.done = Promise.all([
    readLines(child.stdout, (line) => {
      proc.lines.push(line);
      Deno.writeTextFileSync(logFile, line + "\n", { append: true });
    }),
    readLines(child.stderr, (line) => {
      proc.stderr.push(line);
      Deno.writeTextFileSync(logFile + ".stderr", line + "\n", {
        append: true,
      });
    }),
  ]).then(() => {});
  return proc;
}

/** SIGTERM, SIGKILL after 5 s; resolves once mca exited and its output is read. */
export async function stopMca(mca: McaProcess): Promise<void> {
  if (mca.exit === undefined) {
    try {
      mca.child.kill("SIGTERM");
    } catch {
      // already gone
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((r) => {
      timer = setTimeout(() => {
        try {
          mca.child.kill("SIGKILL");
        } catch {
          // already gone
        }
        r();
      }, 5_000);
    });
    await Promise.race([mca.exited, killed]);
    clearTimeout(timer);
  }
  await mca.exited;
  await mca.done;
}

/**
 * Polls `mca --probe` in the mca container (its network, its mounts) until
 * it passes, like the kubelet's startup probe.
 */
export async function waitReady(
  mca: McaProcess,
  probe: () => Promise<Deno.CommandOutput>,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = "";
  while (true) {
    if (mca.exit !== undefined) {
      throw new Error(
        `mca exited (code ${mca.exit.code}) before it was ready:\n` +
          [...mca.lines, ...mca.stderr].slice(-30).join("\n"),
      );
    }
    const out = await probe();
    if (out.code === 0) return;
    last = decoder.decode(out.stderr).trim();
    if (Date.now() >= deadline) {
      throw new Error(
        `mca not ready within ${
          READY_TIMEOUT_MS / 1000
        } s (last probe: ${last})\n` +
          [...mca.lines, ...mca.stderr].slice(-30).join("\n"),
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The fields of an `api call` log line that tests look at. */
export interface CallLine {
  time?: string;
  level?: string;
  msg?: string;
  cluster?: string;
  status?: number;
  verb?: string;
  method?: string;
  path?: string;
  resource?: string;
  namespace?: string;
  name?: string;
  error?: string;
  /** The policy rule that refused the call. */
  policyRule?: string;
  userAgent?: string;
}

/** The `api call` lines of a log (other lines and non-JSON are skipped). */
export function callLines(lines: string[]): CallLine[] {
  const calls: CallLine[] = [];
  for (const line of lines) {
    try {
      const v = JSON.parse(line);
      if (v && v.msg === "api call") calls.push(v);
    } catch {
      // not JSON: checked elsewhere
    }
  }
  return calls;
}
