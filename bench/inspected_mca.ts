/**
 * mca under `--inspect` in front of a fake upstream of its own, with the
 * inspector connected: what the memory tools (`idle_memory.ts`,
 * `watch_memory.ts`) start from.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Controlled, startControlled } from "./control.ts";
import {
  freePort,
  type Mca,
  type McaTarget,
  startMca,
  writeFakeSaDir,
} from "./mca.ts";
import { stopAll } from "./procs.ts";
import {
  connectInspector,
  type Inspector,
  inspectorUrl,
} from "./heap_snapshot.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const TOKEN = "bench-real-sa-token";

/** The running set; `stop` ends every process it started. */
export interface InspectedMca {
  dir: string;
  upstream: Controlled;
  mca: Mca;
  insp: Inspector;
  stop(): Promise<void>;
}

/** A fake upstream in its own process, and a kubelet-style SA dir for it. */
export interface BenchUpstream {
  dir: string;
  upstream: Controlled;
  target: McaTarget;
  /** Stops the upstream and every other child of the benchmark. */
  stop(): Promise<void>;
}

/** Starts one under a fresh tmp/bench/<name>-<time>. */
export async function startBenchUpstream(name: string): Promise<BenchUpstream> {
  const dir = join(ROOT, "tmp", "bench", `${name}-${Date.now()}`);
  await Deno.mkdir(dir, { recursive: true });
  const upstream = await startControlled(
    "fake-upstream",
    fileURLToPath(new URL("./upstream_proc.ts", import.meta.url)),
    [TOKEN],
    join(dir, "fake-upstream"),
  );
  const stop = async () => {
    await upstream.stop();
    await stopAll();
  };
  try {
    const realSaDir = join(dir, "real-sa");
    await writeFakeSaDir(realSaDir, TOKEN, String(upstream.ready.caPem));
    const port = Number(upstream.ready.port);
    return {
      dir,
      upstream,
      target: { realSaDir, host: "127.0.0.1", port },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Starts it under tmp/bench/<name>-<time>; `v8Flags` as `startMca` takes. */
export async function startInspectedMca(
  name: string,
  options: { v8Flags?: string[]; env?: Record<string, string> } = {},
): Promise<InspectedMca> {
  const bench = await startBenchUpstream(name);
  try {
    const port = freePort();
    const mca = await startMca(bench.target, {
      dir: bench.dir,
      name: "mca",
      env: options.env,
      denoFlags: [`--inspect=127.0.0.1:${port}`],
      v8Flags: options.v8Flags,
    });
    const insp = await connectInspector(await inspectorUrl(port));
    return {
      dir: bench.dir,
      upstream: bench.upstream,
      mca,
      insp,
      stop: async () => {
        insp.close();
        await bench.stop();
      },
    };
  } catch (error) {
    await bench.stop();
    throw error;
  }
}

/** `--v8-flags` of a memory tool: unset = what ships, empty = V8's own. */
export function v8FlagsOption(value: string | undefined): string[] | undefined {
  return value?.split(",").filter(Boolean);
}
