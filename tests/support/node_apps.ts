/**
 * The node tier's app side: the app image (static kubectl, the static
 * `/tool` of pod_tool.c and GNU tar with its libraries, which `kubectl cp`
 * runs in the target container), and `kubectl exec` helpers that carry
 * bytes rather than text, so tests can check exact bytes both ways.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Node } from "./node.ts";
import { buildOciArchive, compileStatic, sharedLibs } from "./oci_image.ts";

export const APP_IMAGE = "localhost/kubectl:mca";
const TOOL_C = fileURLToPath(new URL("./pod_tool.c", import.meta.url));

/**
 * Builds the app image's OCI archive under `dir` with the static `kubectl`
 * at that path (the toolchain's); returns the archive's path.
 */
export async function buildAppImage(
  kubectl: string,
  dir: string,
): Promise<string> {
  const rootfs = join(dir, "rootfs");
  await Deno.remove(rootfs, { recursive: true }).catch(() => {});
  await Deno.mkdir(join(rootfs, "tmp"), { recursive: true });
  await Deno.chmod(join(rootfs, "tmp"), 0o1777);
  await Deno.copyFile(kubectl, join(rootfs, "kubectl"));
  await compileStatic(TOOL_C, join(rootfs, "tool"));
  const tar = "/usr/bin/tar";
  for (const file of [tar, ...await sharedLibs(tar)]) {
    await Deno.mkdir(join(rootfs, dirname(file)), { recursive: true });
    await Deno.copyFile(file, join(rootfs, file));
  }
  return await buildOciArchive({
    name: APP_IMAGE,
    rootfs,
    out: join(dir, "app.tar"),
    entrypoint: ["/kubectl"],
    env: ["HOME=/tmp", "PATH=/usr/bin:/bin"],
  });
}

/** A container of the app image running `args` (kubectl's by default). */
export function app(
  name: string,
  args: string[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { name, image: APP_IMAGE, imagePullPolicy: "Never", args, ...extra };
}

/** Same, with `/tool` as the entrypoint. */
export function toolApp(
  name: string,
  args: string[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return app(name, args, { command: ["/tool"], ...extra });
}

/** What one `kubectl exec` gave back. */
export interface ExecResult {
  code: number;
  stdout: Uint8Array;
  stderr: string;
  ms: number;
}

/** Where a command runs: Pod and container in the test namespace. */
export interface Target {
  pod: string;
  container: string;
}

function adminKubectl(node: Node, args: string[], stdin: boolean) {
  return new Deno.Command(node.cluster.bin.kubectl, {
    args: [
      `--kubeconfig=${node.cluster.adminKubeconfig}`,
      `--cache-dir=${join(node.cluster.dir, "kubectl-cache")}`,
      ...args,
    ],
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

function execArgs(node: Node, at: Target, cmd: string[], stdin: boolean) {
  return [
    "exec",
    ...(stdin ? ["-i"] : []),
    at.pod,
    "-n",
    node.cluster.namespace,
    "-c",
    at.container,
    "--",
    ...cmd,
  ];
}

/**
 * Runs `cmd` in a container with the admin's kubectl (straight to the
 * apiserver, not through mca), `stdin` piped in whole. What the test
 * checks is what `cmd` did: a kubectl inside the Pod goes through mca.
 */
export async function execIn(
  node: Node,
  at: Target,
  cmd: string[],
  opts: { stdin?: Uint8Array } = {},
): Promise<ExecResult> {
  const started = Date.now();
  const child = adminKubectl(
    node,
    execArgs(node, at, cmd, opts.stdin !== undefined),
    opts.stdin !== undefined,
  );
  if (opts.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(opts.stdin);
    await writer.close();
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: out.stdout,
    stderr: new TextDecoder().decode(out.stderr),
    ms: Date.now() - started,
  };
}

/** A running `kubectl exec` whose stdout lines are timed as they arrive. */
export interface LineStream {
  /** Lines so far, each with the host time it arrived. */
  lines: { text: string; at: number }[];
  /** Resolves when the exec ends. */
  done: Promise<{ code: number; stderr: string }>;
  /** Stops the host-side kubectl (by its PID). */
  kill(): void;
}

/** Starts `cmd` in a container and records its stdout line by line. */
export function streamLines(node: Node, at: Target, cmd: string[]): LineStream {
  const child = adminKubectl(node, execArgs(node, at, cmd, false), false);
  const lines: { text: string; at: number }[] = [];
  const read = (async () => {
    let rest = "";
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      rest += decoder.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop() ?? "";
      for (const text of parts) lines.push({ text, at: Date.now() });
    }
  })();
  const stderr = new Response(child.stderr).text();
  const done = (async () => {
    const status = await child.status;
    await read;
    return { code: status.code, stderr: await stderr };
  })();
  return {
    lines,
    done,
    kill: () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
    },
  };
}

/** One `api call` line of mca's log. */
export type McaCall = Record<string, unknown>;

/** mca's current log in `pod`, parsed; other lines are skipped. */
export async function mcaLog(
  node: Node,
  pod: string,
  opts: { previous?: boolean } = {},
): Promise<McaCall[]> {
  const r = await node.cluster.kubectl([
    "logs",
    pod,
    "-c",
    "mca",
    "-n",
    node.cluster.namespace,
    ...(opts.previous ? ["--previous"] : []),
  ], { check: false });
  return parseLog(r.stdout);
}

/** The JSON lines of a log; other lines are skipped. */
export function parseLog(text: string): McaCall[] {
  return text.split("\n").flatMap((line) => {
    try {
      const entry = JSON.parse(line);
      return entry && typeof entry === "object" ? [entry] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Follows a container's log from the host (admin, straight to the
 * apiserver) until the container exits. Started before a Pod is deleted,
 * it keeps what the kubelet may remove with the containers.
 */
export function followLog(
  node: Node,
  pod: string,
  container: string,
): Promise<string> {
  const child = adminKubectl(node, [
    "logs",
    "-f",
    pod,
    "-c",
    container,
    "-n",
    node.cluster.namespace,
  ], false);
  return child.output().then((out) => new TextDecoder().decode(out.stdout));
}

/**
 * Polls mca's log until `match` finds at least `count` calls (mca logs an
 * upgraded or streamed call when it ends); returns them or throws.
 */
export async function waitForCalls(
  node: Node,
  pod: string,
  match: (c: McaCall) => boolean,
  opts: { count?: number; ms?: number } = {},
): Promise<McaCall[]> {
  const deadline = Date.now() + (opts.ms ?? 30_000);
  let calls: McaCall[] = [];
  while (Date.now() < deadline) {
    calls = (await mcaLog(node, pod)).filter(
      (c) => c.msg === "api call" && match(c),
    );
    if (calls.length >= (opts.count ?? 1)) return calls;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(
    `mca in ${pod} logged ${calls.length} matching calls, wanted ${
      opts.count ?? 1
    }`,
  );
}

/** Polls `check` every 300 ms until it returns true; throws after `ms`. */
export async function until(
  what: string,
  ms: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** A Pod of the test namespace as the apiserver has it (admin kubectl). */
// deno-lint-ignore no-explicit-any -- Pod JSON from kubectl
export async function podJson(node: Node, name: string): Promise<any> {
  const r = await node.cluster.kubectl([
    "get",
    "pod",
    name,
    "-n",
    node.cluster.namespace,
    "-o",
    "json",
  ]);
  return JSON.parse(r.stdout);
}

/**
 * SIGKILLs the `mca` container of `pod` through containerd (as an OOM kill
 * would) and waits (60 s bound) until the kubelet restarted it in place and
 * its startup probe passed again; returns mca's new restartCount.
 */
export async function killMca(node: Node, pod: string): Promise<number> {
  const mcaOf = async () =>
    (await podJson(node, pod)).status.initContainerStatuses[0];
  const before = await mcaOf();
  const id = String(before.containerID).replace("containerd://", "");
  await node.ctr(["tasks", "kill", "-s", "SIGKILL", id]);
  let now = before;
  await until(`mca of ${pod} restarted by the kubelet`, 60_000, async () => {
    now = await mcaOf();
    return now.restartCount > before.restartCount && now.started === true;
  }).catch(async (error) => {
    throw new Error(
      `${error.message}: ${JSON.stringify(now)}\n${await node.logTails()}`,
    );
  });
  return now.restartCount;
}
