/**
 * Which headers cross the proxy, each way. Requests lose what must not
 * cross a proxy (hop-by-hop headers, RFC 9110 7.6.1) and everything that
 * could carry the app's identity (its `Authorization`, impersonation,
 * front-proxy headers, a bearer token hidden in a WebSocket subprotocol);
 * the upstream's credentials and the observers' headers (trace context) are
 * added. Responses lose the hop-by-hop headers only.
 *
 * @module
 */

import type {
  IncomingHttpHeaders,
  IncomingMessage,
  OutgoingHttpHeaders,
} from "node:http";
import type { UpstreamAuth } from "../clusters/upstream.ts";
import {
  type UpstreamObservation,
  withObserverHeaders,
} from "../observe/observer.ts";

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
  target: { auth: UpstreamAuth; observation?: UpstreamObservation },
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
export function downstreamHeaders(res: IncomingMessage): OutgoingHttpHeaders {
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
