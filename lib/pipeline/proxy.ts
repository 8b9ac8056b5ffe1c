/**
 * The proxy: the TLS listener (lib/proxy/listener.ts) serving every call
 * through the pipeline (./call.ts). This is where the sidecar's parts are
 * put together; neither the listener nor the transport knows of routing.
 *
 * @module
 */

import { type Listener, startListener } from "../proxy/listener.ts";
import type { ListenerOptions } from "../proxy/listener.ts";
import { combineObservers, type Observer } from "../observe/observer.ts";
import type { WorkloadIdentity } from "../observe/observer.ts";
import { logObserver, type LogSink } from "../observe/log.ts";
import { Router } from "../routing/router.ts";
import type { RoutingSource } from "../routing/source.ts";
import type { PolicyCheck } from "../multicluster/policy_step.ts";
import { serveCall, serveUpgrade } from "./call.ts";

/** What the proxy needs to run. */
export interface ProxyOptions extends ListenerOptions {
  /** Clusters and rules (with no rules, every call goes to `local`). */
  routing: RoutingSource;
  /** Where call log lines go. */
  log: LogSink;
  /** More consumers of call events (metrics, traces, audit). */
  observers?: Observer[];
  /** Bound on connecting to the upstream; 10 s by default. */
  connectTimeoutMs?: number;
  /** Bound on an answer's head for calls that are not streams (70 s). */
  headTimeoutMs?: number;
  /** The call policy in force (reloadable), when one is configured. */
  policy?: () => PolicyCheck | undefined;
  /** The workload identity from the real token's claims. */
  identity?: () => WorkloadIdentity | undefined;
}

/** A running proxy. */
export type Proxy = Listener;

/** Starts the listener with the pipeline behind it. */
export function startProxy(options: ProxyOptions): Promise<Proxy> {
  const context = {
    routing: options.routing,
    router: new Router(
      () => options.routing.current.config,
      (cluster) => options.routing.current.registry.isHealthy(cluster),
    ),
    observer: combineObservers([
      logObserver(options.log),
      ...(options.observers ?? []),
    ]),
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    headTimeoutMs: options.headTimeoutMs,
    policy: options.policy,
    identity: options.identity,
  };
  return startListener(options, {
    request: (req, res) => void serveCall(req, res, context),
    upgrade: (req, socket, head) =>
      void serveUpgrade(req, socket, head, context),
  });
}
