/**
 * What every merged call (LIST, WATCH, search) carries, and its small
 * helpers: one upstream request seen by the call's observers, a JSON
 * answer, a cluster's request target.
 *
 * @module
 */

import type {
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from "node:http";
import { type CallOptions, callUpstream } from "../clusters/upstream_call.ts";
import type { UpstreamObservation } from "../observe/observer.ts";
import type { Upstream } from "../clusters/upstream.ts";
import { clusterTarget, type NamespaceMap } from "./fanout_request.ts";

/** What a merged call needs. */
export interface FanoutCall {
  req: IncomingMessage;
  res: ServerResponse;
  /** Headers for upstream (credentials already removed). */
  headers: OutgoingHttpHeaders;
  /** The app's namespace, when a rule maps it to another on the clusters. */
  namespace?: NamespaceMap;
  clusters: Array<{ name: string; upstream: Upstream }>;
  /** Clusters of the set that are known to be down. */
  missing: string[];
  /** The rule lets a merged LIST leave out clusters that cannot answer. */
  partial?: boolean;
  /**
   * The call names one object (a watch with `fieldSelector=metadata.name=X`,
   * as `kubectl get NAME -w` and client-go's watch of one object send): it
   * may start from that object's version, `{its cluster: N}`.
   */
  byName?: boolean;
  /** Clusters the call policy keeps out: never asked, named in a `Warning`. */
  denied?: string[];
  connectTimeoutMs: number;
  /** Called when a cluster fails during the call. */
  onClusterError(cluster: string, error: Error): void;
  /** The call's observation of one upstream request. */
  observe?(cluster: string, target: string): UpstreamObservation | undefined;
}

/** One upstream request of a merged call, seen by the call's observers. */
export function send(
  call: FanoutCall,
  cluster: string,
  options: CallOptions,
): Promise<IncomingMessage> {
  const { upstream } = call.clusters.find((c) => c.name === cluster)!;
  return callUpstream(upstream, {
    ...options,
    observation: call.observe?.(cluster, options.target),
  });
}

/** Writes a JSON answer; returns the bytes written, for the call's outcome. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
): number {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
  return Buffer.byteLength(text);
}

/** The request target for one cluster: its version, its continue, its namespace. */
export function targetFor(
  call: FanoutCall,
  params: Record<string, string | undefined>,
): string {
  return clusterTarget(call.req.url ?? "/", params, call.namespace);
}
