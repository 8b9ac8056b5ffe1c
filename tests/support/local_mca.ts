/**
 * `mca` in laptop mode for e2e tests: a kubeconfig naming a real cluster
 * and a token, `mca` as a child process on a free loopback port, its
 * ready line read.
 *
 * @module
 */

import { join } from "node:path";
import type { Cluster } from "./cluster.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A running laptop-mode `mca`. */
export interface LocalMca {
  proc: Deno.ChildProcess;
  /** The parsed first stdout line. */
  ready: { upstream: string; listen: string[] };
  port: number;
  /** The CA file apps trust `mca` with. */
  caFile: string;
  /** Everything on stdout so far (the call log). */
  output(): string;
  /** SIGTERM, then the rest of stdout and the exit code. */
  stop(): Promise<{ code: number; output: string }>;
  /** SIGKILL when still running (a `finally` after a failure). */
  kill(): Promise<void>;
}

/**
 * Writes `dir/kubeconfig`: `cluster` with its CA file, a user with `token`,
 * one context (`dev`, the test namespace); returns its path.
 */
export async function writeTokenKubeconfig(
  cluster: Cluster,
  options: { dir: string; token: string },
): Promise<string> {
  const { dir, token } = options;
  const kubeconfig = join(dir, "kubeconfig");
  await Deno.writeTextFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: "c",
        cluster: {
          server: cluster.url,
          "certificate-authority": cluster.caFile,
        },
      }],
      users: [{ name: "u", user: { token } }],
      contexts: [{
        name: "dev",
        context: { cluster: "c", user: "u", namespace: cluster.namespace },
      }],
      "current-context": "dev",
    }),
  );
  return kubeconfig;
}

/** Writes a kubeconfig for `cluster` with `token` and starts `mca` on it. */
export async function startLocalMca(
  cluster: Cluster,
  options: { dir: string; token: string },
): Promise<LocalMca> {
  const { dir, token } = options;
  const kubeconfig = await writeTokenKubeconfig(cluster, { dir, token });
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "main.ts"),
      `--kubeconfig=${kubeconfig}`,
      `--mca-sa-dir=${join(dir, "sa")}`,
      `--state-dir=${join(dir, "state")}`,
      "--listen=127.0.0.1",
      "--port=0",
      "--metrics-port=0",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let running = true;
  const firstLine = Promise.withResolvers<void>();
  // the call log is read on as it comes, so mca never blocks on its pipe
  const pump = (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) {
        firstLine.reject(new Error(`mca exited before ready: ${text}`));
        return;
      }
      text += value;
      if (text.includes("\n")) firstLine.resolve();
    }
  })();
  await firstLine.promise;
  const ready = JSON.parse(text.split("\n")[0]);
  return {
    proc,
    ready,
    port: Number(ready.listen[0].split(":").at(-1)),
    caFile: join(dir, "sa", "ca.crt"),
    output: () => text,
    async stop() {
      proc.kill("SIGTERM");
      const { code } = await proc.status;
      await pump;
      running = false;
      return { code, output: text };
    },
    async kill() {
      if (!running) return;
      running = false;
      proc.kill("SIGKILL");
      await proc.status;
      await pump.catch(() => {});
    },
  };
}
