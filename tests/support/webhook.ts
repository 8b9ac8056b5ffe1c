/**
 * `mca --webhook` as a host process for the proof tier, and the small
 * kubectl helpers its tests share: a real kube-apiserver calls it by URL on
 * 127.0.0.1 (tests/e2e/webhook_test.ts, tests/e2e/helm_test.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Cluster } from "./cluster.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** A running `mca --webhook`. */
export interface WebhookProcess {
  child: Deno.ChildProcess;
  /** The HTTPS port it listens on (127.0.0.1). */
  port: number;
  /** Its stdout (JSON log lines), copied here as they come. */
  log: string;
  /** SIGTERM, then waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts `mca --webhook` on 127.0.0.1 (a free port) with the given serving
 * certificate, own namespace `mca-system` and sidecar image `mca:e2e`
 * (`extraArgs` add or override inject flags); resolves once it logs
 * "webhook ready" (30 s deadline). Its stdout goes on to `<dir>/webhook.log`.
 */
export async function startWebhookProcess(
  dir: string,
  certFile: string,
  keyFile: string,
  extraArgs: string[] = [],
): Promise<WebhookProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "main.ts"),
      "--webhook",
      "--listen=127.0.0.1",
      "--port=0",
      `--tls-cert=${certFile}`,
      `--tls-key=${keyFile}`,
      "--namespace=mca-system",
      "--image=mca:e2e",
      ...extraArgs,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const status = child.status;
  const lines = child.stdout.pipeThrough(new TextDecoderStream());
  const reader = lines.getReader();
  let text = "";
  let port = 0;
  const deadline = Date.now() + 30_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<{ done: true; value: undefined }>((r) =>
    timer = setTimeout(() => r({ done: true, value: undefined }), 30_000)
  );
  try {
    while (port === 0 && Date.now() < deadline) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) break;
      text += value;
      const m = text.match(/"msg":"webhook ready".*"port":(\d+)/);
      if (m) port = Number(m[1]);
    }
  } finally {
    clearTimeout(timer);
  }
  if (port === 0) {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await status;
    throw new Error(`mca --webhook did not log ready:\n${text}`);
  }
  const log = join(dir, "webhook.log");
  // Keep draining stdout into a file so the process never blocks on it.
  (async () => {
    const file = await Deno.open(log, { write: true, create: true });
    await file.write(new TextEncoder().encode(text));
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({
        done: true,
        value: "",
      }));
      if (done) break;
      await file.write(new TextEncoder().encode(value));
    }
    file.close();
  })();
  let stopped: Promise<void> | undefined;
  return {
    child,
    port,
    log,
    stop: () => {
      stopped ??= (async () => {
        try {
          child.kill("SIGTERM");
        } catch { /* already exited */ }
        await status;
      })();
      return stopped;
    },
  };
}

/** JSON-ish object. */
export type Obj = { [key: string]: unknown };

/** Creates `manifest` with kubectl and returns the object as stored. */
export async function createStored(
  cluster: { kubectl: Cluster["kubectl"] },
  manifest: string,
): Promise<Obj> {
  return JSON.parse(
    (await cluster.kubectl(["create", "-o", "json", "-f", "-"], {
      stdin: manifest,
    })).stdout,
  ) as Obj;
}

/** A one-container Pod manifest (YAML); `extra` goes under `metadata`. */
export function podYaml(name: string, ns: string, extra = ""): string {
  return `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: ${ns}\n${extra}` +
    "spec:\n  containers: [{name: app, image: busybox}]\n";
}

/** The `name`s of a container list. */
export function containerNames(list: unknown): string[] {
  return ((list ?? []) as Obj[]).map((c) => String(c.name));
}

/**
 * Waits (20 s deadline, 100 ms polls) until namespace `ns` has its `default`
 * ServiceAccount: until then the ServiceAccount admission plugin refuses Pods.
 */
export async function waitForDefaultServiceAccount(
  cluster: Cluster,
  ns: string,
): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (
    (await cluster.kubectl(["get", "sa", "default", "-n", ns], {
      check: false,
    })).code !== 0
  ) {
    assert.ok(Date.now() < deadline, `no default ServiceAccount in ${ns}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Creates Pods `<prefix>-0`, `<prefix>-1`, ... in `ns` until one is stored
 * with `mca` as its first init container (the API server's webhook informer
 * picks a new configuration up shortly after it is written); returns that
 * stored Pod. Fails after `timeoutMs` (default 20 s).
 */
export async function createUntilInjected(
  cluster: Cluster,
  prefix: string,
  ns: string,
  timeoutMs = 20_000,
): Promise<Obj> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0;; i++) {
    const r = await cluster.kubectl(["create", "-o", "json", "-f", "-"], {
      stdin: podYaml(`${prefix}-${i}`, ns),
      check: false,
    });
    const out = r.code === 0 ? JSON.parse(r.stdout) as Obj : undefined;
    if (out && containerNames((out.spec as Obj).initContainers)[0] === "mca") {
      return out;
    }
    assert.ok(
      Date.now() < deadline,
      `Pods in ${ns} were not injected: ${r.stderr}`,
    );
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * A stored Pod spec without the `kube-api-access-<suffix>` volume the
 * ServiceAccount admission plugin adds before mutating webhooks run: the only
 * difference between a webhook-injected and a CLI-injected stored Pod.
 */
export function withoutServiceAccountVolume(spec: Obj): Obj {
  return {
    ...spec,
    volumes: ((spec.volumes ?? []) as Obj[]).filter((v) =>
      !/^kube-api-access-[a-z0-9]{5}$/.test(String(v.name))
    ),
  };
}
