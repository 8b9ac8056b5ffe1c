/**
 * How one call reaches one cluster: the plumbing every upstream client
 * shares (the streaming transport, the `fetch` path for large answers,
 * upgrades, and the calls whose answers MCA reads itself). One place, so a
 * fix to addressing (IPv6 brackets, a kubeconfig server with a base path) or
 * to connection reuse applies to every client at once.
 *
 * @module
 */

import type { OutgoingHttpHeaders } from "node:http";
import type { RequestOptions } from "node:https";
import { connect } from "node:tls";
import type { UpstreamAuth } from "./upstream.ts";

/** What one upstream request needs besides the cluster. */
export interface UpstreamRequest {
  method: string;
  /** Request target as the app sent it: path and query. */
  target: string;
  headers: OutgoingHttpHeaders;
  /**
   * A connection of its own instead of the keep-alive pool: for streams
   * that may last hours (watches, followed logs, upgrades), which would
   * otherwise pin pooled sockets.
   */
  dedicated?: boolean;
  signal?: AbortSignal;
}

/**
 * The path to send upstream: the cluster's base path (a kubeconfig
 * `server: https://host/k8s/clusters/c-1`) joined with the app's target.
 *
 * @example
 * ```ts
 * upstreamPath(new URL("https://h/base/"), "/api/v1/pods?limit=1");
 * // "/base/api/v1/pods?limit=1"
 * ```
 */
export function upstreamPath(base: URL, target: string): string {
  const prefix = base.pathname.replace(/\/+$/, "");
  return prefix + (target.startsWith("/") ? target : "/" + target);
}

/** The absolute URL of a call, for `fetch`. */
export function upstreamHref(base: URL, target: string): string {
  return base.origin + upstreamPath(base, target);
}

/** `node:https` request options for one call to the cluster at `url`. */
export function requestOptionsFor(
  url: URL,
  auth: UpstreamAuth,
  call: UpstreamRequest,
): RequestOptions {
  return {
    protocol: "https:",
    // URL keeps the brackets of an IPv6 literal; a socket address has none.
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port || 443,
    method: call.method,
    path: upstreamPath(url, call.target),
    headers: call.headers,
    ...(call.signal ? { signal: call.signal } : {}),
    ...(call.dedicated ? { ...auth.tls, agent: false } : { agent: auth.agent }),
  };
}

/**
 * Holds back the latest chunk of a body so the last one can go to `end()`.
 * Under Deno 2.9 a `node:http(s)` message with a body finished by a bare
 * `end()` after several `write()`s never completes (a server response with
 * `Content-Length`, a client request), and the next message on that
 * connection is lost. With `hold: false` every chunk passes at once (a
 * watch must see each event as it comes).
 */
export function lastChunkHolder(hold: boolean): {
  /** The chunk to write now, if any. */
  next(chunk: Uint8Array): Uint8Array | undefined;
  /** The chunk to hand to `end()`, if any. */
  last(): Uint8Array | undefined;
} {
  let held: Uint8Array | undefined;
  return {
    next(chunk) {
      if (!hold) return chunk;
      const out = held;
      held = chunk;
      return out;
    },
    last: () => held,
  };
}

/**
 * Whether a TCP connection and a TLS handshake with the cluster at `url`
 * complete within `timeoutMs`. `fetch` cannot bound its connect phase on its
 * own, so the `fetch` path asks this when a head is late, to tell an
 * upstream that cannot be reached (fail over now) from one that is slow to
 * answer (keep waiting).
 */
export function tlsReachable(
  url: URL,
  options: { auth: UpstreamAuth; timeoutMs: number },
): Promise<boolean> {
  const { promise, resolve } = Promise.withResolvers<boolean>();
  const socket = connect({
    ...options.auth.tls,
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: Number(url.port || 443),
  });
  const done = (ok: boolean) => {
    clearTimeout(timer);
    socket.destroy();
    resolve(ok);
  };
  const timer = setTimeout(() => done(false), options.timeoutMs);
  socket.once("secureConnect", () => done(true));
  socket.once("error", () => done(false));
  return promise;
}
