/**
 * The routing configuration and cluster registry in force, reloaded when
 * their files change.
 *
 * Both come from mounted volumes (a ConfigMap, a Secret) that the kubelet
 * updates by swapping a `..data` symlink. MCA polls a cheap fingerprint of
 * each (symlink target, or size/mtime/inode of a plain file) and, on change,
 * loads and validates the whole new version before switching to it. A call
 * already decided keeps the plan it was given, so nothing in flight is
 * dropped; an invalid new version is logged and the previous one stays.
 *
 * @module
 */

import { dirname, join } from "node:path";
import {
  ClusterRegistry,
  loadClusters,
  type RegistryOptions,
} from "../clusters/registry.ts";
import { formatEvent, type LogSink } from "../observe/log.ts";
import { parseRoutingConfig, type RoutingConfig } from "./config.ts";
import type { Upstream } from "../clusters/upstream.ts";

/** Where the configuration lives. */
export interface SourceOptions {
  /** The routing YAML file; all calls stay local without one. */
  configFile?: string;
  /** Directory of kubeconfig files (one context = one cluster). */
  clustersDir?: string;
  /** How often to look for changes; 2 s by default. */
  pollIntervalMs?: number;
  healthIntervalMs?: number;
  log: LogSink;
  /** Told of every reload attempt of changed files (metrics count them). */
  onReload?: (result: "loaded" | "rejected") => void;
}

/** One consistent version: rules and the clusters they name. */
export interface RoutingState {
  config: RoutingConfig;
  registry: ClusterRegistry;
}

function fingerprint(path: string | undefined): string {
  if (path === undefined) return "";
  const parts: string[] = [];
  for (const dir of [path, dirname(path)]) {
    try {
      parts.push(Deno.readLinkSync(join(dir, "..data")));
    } catch {
      // not a kubelet-managed volume
    }
  }
  try {
    const s = Deno.statSync(path);
    parts.push(`${s.ino}:${s.size}:${s.mtime?.getTime()}`);
    if (s.isDirectory) {
      for (const e of Deno.readDirSync(path)) {
        if (e.name.startsWith(".")) continue;
        const f = Deno.statSync(join(path, e.name));
        parts.push(`${e.name}:${f.ino}:${f.size}:${f.mtime?.getTime()}`);
      }
    }
  } catch {
    parts.push("missing");
  }
  return parts.sort().join("|");
}

function sourceFingerprint(options: SourceOptions): string {
  return fingerprint(options.configFile) + "#" +
    fingerprint(options.clustersDir);
}

/** Builds a state from the files; throws with file and line on any error. */
async function load(
  local: Upstream,
  options: SourceOptions,
): Promise<RoutingState> {
  const upstreams = await loadClusters(local, options.clustersDir);
  const registryOptions: RegistryOptions = {
    healthIntervalMs: options.healthIntervalMs,
    log: options.log,
  };
  const registry = new ClusterRegistry(upstreams, registryOptions);
  try {
    let text = "";
    if (options.configFile !== undefined) {
      try {
        text = Deno.readTextFileSync(options.configFile);
      } catch (error) {
        throw new Error(
          `cannot read the routing configuration ${options.configFile}: ${
            (error as Error).message
          }`,
        );
      }
    }
    const config = parseRoutingConfig(text, {
      file: options.configFile ?? "(none)",
      clusters: registry.names(),
    });
    return { config, registry };
  } catch (error) {
    registry.close();
    throw error;
  }
}

/** Keeps the current routing state and swaps in valid new versions. */
export class RoutingSource {
  #local: Upstream;
  #options: SourceOptions;
  #state: RoutingState;
  #seen: string;
  #timer: ReturnType<typeof setInterval> | undefined;
  #reloading = false;

  private constructor(
    local: Upstream,
    options: SourceOptions,
    state: RoutingState,
    seen: string,
  ) {
    this.#local = local;
    this.#options = options;
    this.#state = state;
    this.#seen = seen;
  }

  /** Loads the first version; rejects (start-up fails) if it is invalid. */
  static async open(
    local: Upstream,
    options: SourceOptions,
  ): Promise<RoutingSource> {
    const seen = sourceFingerprint(options);
    return new RoutingSource(local, options, await load(local, options), seen);
  }

  /** The state in force now. */
  get current(): RoutingState {
    return this.#state;
  }

  /** Reloads if the files changed; resolves whether a new version is in force. */
  async reload(): Promise<boolean> {
    if (this.#reloading) return false;
    const seen = sourceFingerprint(this.#options);
    if (seen === this.#seen) return false;
    this.#seen = seen;
    let next: RoutingState;
    this.#reloading = true;
    try {
      next = await load(this.#local, this.#options);
    } catch (error) {
      this.#options.log(
        formatEvent(
          "error",
          "routing configuration rejected; keeping the previous one",
          {
            error: (error as Error).message,
          },
        ),
      );
      this.#options.onReload?.("rejected");
      return false;
    } finally {
      this.#reloading = false;
    }
    const previous = this.#state;
    this.#state = next;
    next.registry.start();
    previous.registry.close({ graceMs: 120_000 });
    this.#options.log(formatEvent("info", "routing configuration loaded", {
      rules: next.config.rules.length,
      clusters: [...next.registry.names()].sort(),
    }));
    this.#options.onReload?.("loaded");
    return true;
  }

  /** Starts health checks and change polling. */
  start(): void {
    this.#state.registry.start();
    this.#timer = setInterval(
      () => this.reload(),
      this.#options.pollIntervalMs ?? 2000,
    );
  }

  /** Stops everything (the `local` upstream is the caller's). */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#state.registry.close();
  }
}
