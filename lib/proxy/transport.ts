/**
 * Moving one call's bytes between an app and an upstream API server.
 *
 * Streams both ways without holding whole bodies (watches last hours, LISTs
 * reach hundreds of MB), removes what must not cross a proxy (hop-by-hop
 * headers, the app's credentials), adds the upstream's credentials, and
 * relays protocol upgrades (exec, attach, port-forward over SPDY/3.1 or
 * WebSocket) as opaque bytes after the upstream's `101`.
 *
 * Knows nothing of routing: the caller says where to send the call.
 *
 * @module
 */

import { request } from "node:https";
import type {
  IncomingHttpHeaders,
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from "node:http";
import type { Socket } from "node:net";
import { failureStatus, statusResponse } from "../kube/status.ts";
import type { UpstreamAuth } from "../clusters/upstream.ts";
import {
  type UpstreamObservation,
  withObserverHeaders,
} from "../observe/observer.ts";

/** Where to send one call, with which credentials. */
export interface Target {
  url: URL;
  auth: UpstreamAuth;
  /** Bound on TCP connect + TLS handshake with the upstream. */
  connectTimeoutMs: number;
  /**
   * Use a connection of its own instead of the keep-alive pool: for streams
   * that may last hours (watches, followed logs), which would otherwise pin
   * pooled sockets.
   */
  dedicated?: boolean;
  /** The request body, when the caller has already read (and maybe changed) it. */
  body?: Uint8Array;
  /**
   * The caller will try another cluster if this one cannot be reached: do
   * not answer the app then, only report `unreachable`.
   */
  retryable?: boolean;
  /** Told the response head or the failure; may add headers (traces). */
  observation?: UpstreamObservation;
  /**
   * Bound on waiting for the response head of a call that is not a stream
   * (`dedicated` calls are unbounded). Past it the app gets a 504 Status.
   */
  headTimeoutMs?: number;
}

/**
 * kube-apiserver ends a non-long-running call after its `--request-timeout`
 * (60 s by default) with a 504 of its own; a head that has not come 10 s
 * after that will not come.
 */
export const HEAD_TIMEOUT_MS = 70_000;

/** The 504 of a call whose upstream sent no head in time. */
export function gatewayTimeout(target: Target, afterMs: number) {
  return statusResponse(
    failureStatus(
      504,
      "Timeout",
      `mca: the API server ${target.url.origin} sent no answer within ${afterMs} ms`,
    ),
    { retryAfterSeconds: 1 },
  );
}

/** Aborts a non-streaming call whose head does not come in time. */
export function boundHead(
  upReq: ReturnType<typeof request>,
  target: Target,
): { timedOut(): boolean } {
  let fired = false;
  if (target.dedicated) return { timedOut: () => false };
  const ms = target.headTimeoutMs ?? HEAD_TIMEOUT_MS;
  const timer = setTimeout(() => {
    fired = true;
    upReq.destroy(new Error(`no answer within ${ms} ms`));
  }, ms);
  const clear = () => clearTimeout(timer);
  upReq.once("response", clear);
  upReq.once("upgrade", clear);
  upReq.once("close", clear);
  return { timedOut: () => fired };
}

/** How a call ended, for the log line. */
export interface Outcome {
  status: number;
  bytesIn: number;
  bytesOut: number;
  error?: string;
  /** The upstream could not be reached at all (no answer came back). */
  unreachable?: boolean;
}

/** Headers that describe one connection, not the message (RFC 9110 7.6.1). */
export const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authenticate",
  "proxy-authorization",
  "http2-settings",
]);

/** Headers that could carry the app's identity; never forwarded. */
const CREDENTIAL_HEADERS = new Set(["authorization", "cookie"]);
const CREDENTIAL_PREFIXES = ["impersonate-", "x-remote-"];

/** True for a request header the proxy must not forward upstream. */
export function isDroppedRequestHeader(
  name: string,
  connectionTokens: Set<string>,
  upgrade: boolean,
): boolean {
  const lower = name.toLowerCase();
  if (CREDENTIAL_HEADERS.has(lower)) return true;
  if (CREDENTIAL_PREFIXES.some((p) => lower.startsWith(p))) return true;
  if (lower === "host") return true; // set from the upstream URL
  // The listener already answered `Expect: 100-continue` to the app.
  if (lower === "expect") return true;
  if (upgrade && (lower === "connection" || lower === "upgrade")) return false;
  return HOP_BY_HOP.has(lower) || connectionTokens.has(lower);
}

function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const value = headers["connection"];
  const tokens = new Set<string>();
  for (const part of String(value ?? "").split(",")) {
    const token = part.trim().toLowerCase();
    if (token !== "" && token !== "upgrade") tokens.add(token);
  }
  return tokens;
}

/** The headers to send upstream for an app's request. */
export function upstreamHeaders(
  req: IncomingMessage,
  authorization: string | undefined,
  upgrade = false,
): OutgoingHttpHeaders {
  const tokens = connectionTokens(req.headers);
  const out: OutgoingHttpHeaders = {};
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (isDroppedRequestHeader(name, tokens, upgrade)) continue;
    const existing = out[name];
    if (existing === undefined) out[name] = raw[i + 1];
    else if (Array.isArray(existing)) existing.push(raw[i + 1]);
    else out[name] = [String(existing), raw[i + 1]];
  }
  const protocols = out["sec-websocket-protocol"];
  if (protocols !== undefined) {
    const kept = withoutBearerProtocols(protocols);
    if (kept === "") delete out["sec-websocket-protocol"];
    else out["sec-websocket-protocol"] = kept;
  }
  if (authorization) out["authorization"] = authorization;
  return out;
}

/**
 * The headers for one upstream request: the app's (filtered), the
 * observers' (trace context replaces the app's), then the credentials.
 */
export function targetHeaders(
  req: IncomingMessage,
  target: Target,
  upgrade = false,
): OutgoingHttpHeaders {
  const out = withObserverHeaders(
    upstreamHeaders(req, undefined, upgrade),
    target.observation?.headers,
  );
  if (target.auth.authorization) {
    out["authorization"] = target.auth.authorization;
  }
  return out;
}

/** The upstream's `Audit-Id`, for joining MCA's records with its audit log. */
export function auditIdOf(headers: IncomingHttpHeaders): string | undefined {
  const value = headers["audit-id"];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * WebSocket clients that cannot set headers (browsers) pass a token as a
 * subprotocol `base64url.bearer.authorization.k8s.io.<token>`; it is a
 * credential like any other and is removed.
 */
function withoutBearerProtocols(value: string | string[] | number): string {
  return String(value).split(",").map((p) => p.trim()).filter((p) =>
    p !== "" && !p.startsWith("base64url.bearer.authorization.k8s.io.")
  ).join(", ");
}

/** The upstream's response headers, minus the hop-by-hop ones. */
function downstreamHeaders(res: IncomingMessage): OutgoingHttpHeaders {
  const tokens = connectionTokens(res.headers);
  const out: OutgoingHttpHeaders = {};
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (HOP_BY_HOP.has(name) || tokens.has(name)) continue;
    const existing = out[name];
    if (existing === undefined) out[name] = raw[i + 1];
    else if (Array.isArray(existing)) existing.push(raw[i + 1]);
    else out[name] = [String(existing), raw[i + 1]];
  }
  return out;
}

export function requestOptions(
  req: IncomingMessage,
  target: Target,
  headers: OutgoingHttpHeaders,
) {
  return {
    protocol: "https:",
    host: target.url.hostname.replace(/^\[|\]$/g, ""),
    port: target.url.port || 443,
    method: req.method,
    path: joinPath(target.url, req.url ?? "/"),
    headers,
  };
}

function joinPath(base: URL, requestTarget: string): string {
  const prefix = base.pathname.replace(/\/+$/, "");
  return prefix +
    (requestTarget.startsWith("/") ? requestTarget : "/" + requestTarget);
}

/** Aborts a request whose TCP connect + TLS handshake takes too long. */
export function boundConnect(
  upReq: ReturnType<typeof request>,
  timeoutMs: number,
): void {
  upReq.on("socket", (socket: Socket) => {
    if (!socket.connecting) return;
    const timer = setTimeout(() => {
      upReq.destroy(
        new Error(`no TLS connection within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    const clear = () => clearTimeout(timer);
    socket.once("secureConnect", clear);
    socket.once("close", clear);
    upReq.once("response", clear);
  });
}

export function unavailable(target: Target, error: Error) {
  return statusResponse(
    failureStatus(
      503,
      "ServiceUnavailable",
      `mca: the API server ${target.url.origin} is unreachable: ${error.message}`,
    ),
    { retryAfterSeconds: 1 },
  );
}

/**
 * The outcome of an exchange and the one-shot function that reports it
 * (events from both sockets race to end an exchange; the first wins).
 */
export function settler() {
  const { promise, resolve } = Promise.withResolvers<Outcome>();
  const outcome: Outcome = { status: 0, bytesIn: 0, bytesOut: 0 };
  let settled = false;
  function settle(error?: string) {
    if (settled) return;
    settled = true;
    if (error && !outcome.error) outcome.error = error;
    resolve(outcome);
  }
  return { promise, outcome, settle };
}

/**
 * Forwards one plain HTTP call and streams the answer back.
 *
 * Resolves when the exchange is over (finished, failed or abandoned by the
 * client); never rejects.
 */
export function forwardHttp(
  req: IncomingMessage,
  res: ServerResponse,
  target: Target,
): Promise<Outcome> {
  const { promise, outcome, settle } = settler();
  const headers = targetHeaders(req, target);
  if (target.body !== undefined) {
    delete headers["transfer-encoding"];
    if (target.body.length > 0 || headers["content-length"] !== undefined) {
      headers["content-length"] = String(target.body.length);
    }
  }
  const upReq = request({
    ...requestOptions(req, target, headers),
    ...(target.dedicated
      ? { ...target.auth.tls, agent: false }
      : { agent: target.auth.agent }),
  });
  boundConnect(upReq, target.connectTimeoutMs);
  const head = boundHead(upReq, target);

  upReq.on("response", (upRes) => {
    outcome.status = upRes.statusCode ?? 502;
    target.observation?.response({
      status: outcome.status,
      auditId: auditIdOf(upRes.headers),
    });
    res.writeHead(
      outcome.status,
      upRes.statusMessage,
      downstreamHeaders(upRes),
    );
    if (
      upRes.headers["content-length"] === undefined &&
      hasBody(req.method, outcome.status)
    ) {
      res.flushHeaders(); // a watch's client must see the headers at once
    }
    // A sized body's last chunk goes to end(): under Deno 2.9, a response
    // with Content-Length finished by a bare end() after several write()s
    // never completes, and the next answer on the connection is lost. A
    // streamed body (a watch) is written at once, every chunk.
    const holdLast = upRes.headers["content-length"] !== undefined;
    let held: Uint8Array | undefined;
    upRes.on("data", (chunk: Uint8Array) => {
      outcome.bytesOut += chunk.length;
      const out = holdLast ? held : chunk;
      held = holdLast ? chunk : undefined;
      if (out !== undefined && !res.write(out)) {
        upRes.pause();
        res.once("drain", () => upRes.resume());
      }
    });
    upRes.on("error", (error) => {
      res.destroy();
      settle(`upstream response: ${error.message}`);
    });
    upRes.on("end", () => {
      res.end(held);
      settle();
    });
  });
  upReq.on("error", (error) => {
    if (outcome.status === 0) {
      const reason = head.timedOut() ? "timeout" : "unreachable";
      target.observation?.failed(reason, error.message);
    }
    if (head.timedOut() && !res.headersSent && !res.destroyed) {
      // It answered the connection, so it is not unreachable: no failover,
      // no health change; the app may retry.
      const { headers, body } = gatewayTimeout(
        target,
        target.headTimeoutMs ?? HEAD_TIMEOUT_MS,
      );
      outcome.status = 504;
      res.writeHead(504, headers).end(body);
    } else if (target.retryable && outcome.status === 0 && !res.headersSent) {
      outcome.unreachable = true;
    } else if (!res.headersSent && !res.destroyed) {
      const { headers, body } = unavailable(target, error);
      outcome.status = 503;
      res.writeHead(503, headers);
      res.end(body);
      outcome.unreachable = true;
    } else {
      res.destroy();
    }
    settle(error.message);
  });
  res.on("close", () => {
    if (!res.writableFinished) {
      upReq.destroy();
      settle("client closed the connection");
    }
  });
  if (target.body !== undefined) {
    outcome.bytesIn = target.body.length;
    upReq.end(target.body);
  } else {
    streamBody(req, upReq, outcome);
  }
  return promise;
}

/**
 * Streams an app's request body upstream, always handing the last chunk to
 * `end()`. Under Deno 2.9 a `node:https` client request whose body was
 * finished by a bare `end()` after asynchronous `write()`s never emits
 * `finish`: its pooled socket then stalls the next call it carries.
 */
function streamBody(
  req: IncomingMessage,
  upReq: ReturnType<typeof request>,
  outcome: Outcome,
): void {
  let held: Uint8Array | undefined;
  req.on("data", (chunk: Uint8Array) => {
    outcome.bytesIn += chunk.length;
    if (held !== undefined && !upReq.write(held)) {
      req.pause();
      upReq.once("drain", () => req.resume());
    }
    held = chunk;
  });
  req.on("end", () => upReq.end(held));
}

/**
 * Whether a response carries a body (RFC 9110 6.4.1). Flushing the head of
 * one that cannot (304, 204, HEAD) made Deno's server leave that response
 * unfinished, and the next response on the connection never went out.
 */
function hasBody(method: string | undefined, status: number): boolean {
  return method !== "HEAD" && status >= 200 && status !== 204 &&
    status !== 304;
}
