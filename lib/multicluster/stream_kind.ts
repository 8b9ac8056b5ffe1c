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
 * Bodiless reads whose answer can be large: LISTs, discovery documents, a
 * log read to its end, anything behind a `proxy` subresource. They go
 * through fetch, which reads only as fast as the app does
 * (lib/proxy/fetch_forward.ts). A single object (bounded by etcd's request
 * size) and streams that last (watches, followed logs) stay on the
 * `node:https` path.
 */
export function mayBeLarge(
  req: IncomingMessage,
  info: RequestInfo,
  body: Uint8Array | undefined,
): boolean {
  if (req.method !== "GET" || body !== undefined || hasBody(req)) return false;
  if (info.verb === "list" || !info.isResourceRequest) return true;
  if (info.subresource === "proxy") return true;
  return info.subresource === "log" && !isLongLived(info, req.url ?? "");
}
