/**
 * Which way a call to one cluster travels: streams that may last hours get a
 * connection of their own, and bodiless reads whose answer can be large take
 * the back-pressured `fetch` path. Decided from the call alone, before any
 * byte goes upstream.
 *
 * @module
 */

import type { IncomingMessage } from "node:http";
import type { RequestInfo } from "../kube/request_info.ts";
import { hasBody } from "./request_body.ts";

/** Watches and followed logs may stream for hours: keep them off the pool. */
export function isLongLived(info: RequestInfo, target: string): boolean {
  if (info.verb === "watch") return true;
  return info.subresource === "log" &&
    /[?&]follow=(true|1)(&|$)/i.test(target);
}

/**
 * A plain watch (`GET` without a body): it goes through the cluster's
 * stream clients, HTTP/2 where the API server offers it, so watches share
 * connections as client-go's do (lib/clusters/stream_clients.ts).
 */
export function isWatch(
  req: IncomingMessage,
  info: RequestInfo,
  body: Uint8Array | undefined,
): boolean {
  return info.verb === "watch" && req.method === "GET" &&
    (body === undefined || body.length === 0) && !hasBody(req);
}

/**
 * Bodiless reads whose answer can be large or endless: LISTs, discovery
 * documents, logs (read to their end or followed), anything behind a
 * `proxy` subresource. They go through fetch, which reads only as fast as
 * the app does (lib/proxy/fetch_forward.ts): a followed log of a chatty
 * container read by a slow app slows the kubelet down instead of filling
 * MCA. A single object (bounded by etcd's request size) stays on the
 * `node:https` path. Watches take `fetch` too, but through their own
 * clients and without back-pressure ({@linkcode isWatch}).
 */
export function mayBeLarge(
  req: IncomingMessage,
  info: RequestInfo,
  body: Uint8Array | undefined,
): boolean {
  if (req.method !== "GET" || body !== undefined || hasBody(req)) return false;
  if (info.verb === "list" || !info.isResourceRequest) return true;
  return info.subresource === "proxy" || info.subresource === "log";
}
