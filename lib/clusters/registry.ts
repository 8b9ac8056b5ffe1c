/**
 * The clusters MCA can route to, and whether each is up.
 *
 * `local` is the Pod's own cluster (in-cluster credentials). Every other
 * cluster is a context of a kubeconfig file in one directory (a mounted
 * Secret): the context name is the cluster name, and every auth method
 * kubeconfig supports works because `@kubernetes/client-node` applies it.
 * A periodic `GET /readyz` with each cluster's credentials keeps a health
 * flag that routing consults; a failed call marks a cluster down at once.
 *
 * @module
 */

import { join } from "node:path";
import { callUpstream } from "./upstream_call.ts";
import {
  discoverUpstream,
  kubeconfigContexts,
  type Upstream,
} from "./upstream.ts";
import { formatEvent, type LogSink } from "../observe/log.ts";
import { LOCAL_CLUSTER } from "../routing/router.ts";

/** Options of a registry. */
export interface RegistryOptions {
  /** How often to probe each cluster; 5 s by default. */
  healthIntervalMs?: number;
  /** Bound on one probe. */
  healthTimeoutMs?: number;
  log: LogSink;
}

/** Known clusters, their upstreams and health. */
export class ClusterRegistry {
  #upstreams = new Map<string, Upstream>();
  #healthy = new Map<string, boolean>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #options: RegistryOptions;

  constructor(upstreams: Map<string, Upstream>, options: RegistryOptions) {
    this.#upstreams = upstreams;
    this.#options = options;
    for (const name of upstreams.keys()) this.#healthy.set(name, true);
  }

  /** Every cluster name, `local` included. */
  names(): Set<string> {
    return new Set(this.#upstreams.keys());
  }

  /** The upstream of a cluster; throws for an unknown name. */
  get(name: string): Upstream {
    const upstream = this.#upstreams.get(name);
    if (!upstream) throw new Error(`unknown cluster ${name}`);
    return upstream;
  }

  /** Whether the last probe (or call) of a cluster succeeded. */
  isHealthy(name: string): boolean {
    return this.#healthy.get(name) ?? false;
  }

  /** Records a cluster's state, logging changes. */
  setHealthy(name: string, healthy: boolean, reason = ""): void {
    if (this.#healthy.get(name) === healthy) return;
    this.#healthy.set(name, healthy);
    this.#options.log(
      formatEvent(healthy ? "info" : "warn", "cluster health", {
        cluster: name,
        healthy,
        ...(reason ? { reason } : {}),
      }),
    );
  }

  /** Probes every cluster once. */
  async checkAll(): Promise<void> {
    await Promise.all([...this.#upstreams].map(async ([name, upstream]) => {
      try {
        const res = await callUpstream(upstream, {
          method: "GET",
          target: "/readyz",
          headers: { accept: "text/plain" },
          connectTimeoutMs: this.#options.healthTimeoutMs ?? 2000,
        });
        res.resume();
        const ok = res.statusCode === 200;
        this.setHealthy(
          name,
          ok,
          ok ? "" : `/readyz answered ${res.statusCode}`,
        );
      } catch (error) {
        this.setHealthy(name, false, (error as Error).message);
      }
    }));
  }

  /**
   * Starts periodic probes (the first one at once). With only `local` there
   * is nothing to choose between, so nothing is probed.
   */
  start(): void {
    if (this.#upstreams.size < 2) return;
    this.checkAll();
    this.#timer = setInterval(
      () => this.checkAll(),
      this.#options.healthIntervalMs ?? 5000,
    );
  }

  /**
   * Stops probing and closes every remote upstream (not `local`). With
   * `graceMs`, connections are closed only after that delay, so that calls
   * still running on a replaced registry finish.
   */
  close(options: { graceMs?: number } = {}): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    const closeAll = () => {
      for (const [name, upstream] of this.#upstreams) {
        if (name !== LOCAL_CLUSTER) upstream.close();
      }
    };
    if (!options.graceMs) return closeAll();
    Deno.unrefTimer(setTimeout(closeAll, options.graceMs));
  }
}

/**
 * Loads every kubeconfig file of a directory (hidden entries, such as the
 * kubelet's `..data`, are skipped) into one map of upstreams, plus `local`.
 * Two contexts with the same name, or a context called `local`, are errors
 * naming both places.
 */
export async function loadClusters(
  local: Upstream,
  dir: string | undefined,
): Promise<Map<string, Upstream>> {
  const upstreams = new Map<string, Upstream>([[LOCAL_CLUSTER, local]]);
  if (dir === undefined) return upstreams;
  const origin = new Map<string, string>();
  let files: string[];
  try {
    files = [...Deno.readDirSync(dir)]
      .filter((e) => !e.name.startsWith("."))
      .map((e) => e.name)
      .sort();
  } catch (error) {
    throw new Error(
      `cannot read the clusters directory ${dir}: ${(error as Error).message}`,
    );
  }
  try {
    for (const file of files) {
      const path = join(dir, file);
      for (const context of await kubeconfigContexts(path)) {
        if (context === LOCAL_CLUSTER) {
          throw new Error(
            `${path}: context "local" is reserved for the Pod's own cluster; rename it`,
          );
        }
        if (origin.has(context)) {
          throw new Error(
            `${path}: context ${JSON.stringify(context)} is also defined in ${
              origin.get(context)
            }; cluster names must be unique`,
          );
        }
        origin.set(context, path);
        upstreams.set(
          context,
          await discoverUpstream({ saDir: "", kubeconfig: path, context }),
        );
      }
    }
  } catch (error) {
    for (const [name, upstream] of upstreams) {
      if (name !== LOCAL_CLUSTER) upstream.close();
    }
    throw error;
  }
  return upstreams;
}
