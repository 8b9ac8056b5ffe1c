/**
 * Kubernetes `Status` error bodies.
 *
 * When MCA itself answers an error (upstream unreachable, bad request), SDKs
 * must be able to parse it exactly like an API server error: a `kind: Status`
 * JSON object with `Content-Type: application/json`. client-go retries a 503
 * only when it carries `Retry-After`, so MCA's 503s do.
 *
 * @module
 */

import { type ServerResponse, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

/** The Kubernetes `metav1.Status` object MCA sends. */
export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure";
  message: string;
  reason: string;
  code: number;
}

/** Builds a failure `Status` with a reason from Kubernetes' own vocabulary. */
export function failureStatus(
  code: number,
  reason: string,
  message: string,
): Status {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
}

/** Headers and body of a `Status` response, ready to write. */
export function statusResponse(
  status: Status,
  options: { retryAfterSeconds?: number } = {},
): { headers: Record<string, string>; body: string } {
  const body = JSON.stringify(status);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "content-length": String(new TextEncoder().encode(body).length),
    "cache-control": "no-cache, private",
  };
  if (options.retryAfterSeconds !== undefined) {
    headers["retry-after"] = String(options.retryAfterSeconds);
  }
  return { headers, body };
}

/**
 * Answers a call with a failure `Status` (503s carry `Retry-After: 1`) and
 * returns what the log line needs.
 */
export function writeStatus(
  res: ServerResponse,
  code: number,
  reason: string,
  message: string,
): { status: number; bytesIn: number; bytesOut: number } {
  const { headers, body } = statusResponse(
    failureStatus(code, reason, message),
    { retryAfterSeconds: code === 503 ? 1 : undefined },
  );
  res.writeHead(code, headers).end(body);
  return {
    status: code,
    bytesIn: 0,
    bytesOut: Number(headers["content-length"]),
  };
}

/**
 * Answers on a raw socket (an upgrade request, before any `101`) with a
 * `Status` and closes the connection: after a refused upgrade the socket
 * carries nothing else.
 */
export function writeSocketStatus(
  socket: Duplex,
  status: Status,
  options: { retryAfterSeconds?: number } = {},
): { status: number; bytesIn: number; bytesOut: number } {
  const { headers, body } = statusResponse(status, options);
  let head = `HTTP/1.1 ${status.code} ${STATUS_CODES[status.code] ?? ""}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    head += `${name}: ${value}\r\n`;
  }
  socket.end(`${head}connection: close\r\n\r\n${body}`);
  return {
    status: status.code,
    bytesIn: 0,
    bytesOut: Number(headers["content-length"]),
  };
}

/** A `Status` with `details`, as kube-apiserver's `NewForbidden` builds it. */
export interface ForbiddenStatus extends Omit<Status, "details"> {
  details: { name?: string; group?: string; kind?: string };
}

/**
 * The 403 of a call refused by MCA's own policy, shaped like
 * kube-apiserver's `NewForbidden` so every SDK raises its usual forbidden
 * error. The message says MCA refused it (nobody should hunt RBAC) but not
 * which rule: that goes to the log line, the audit event and a metric.
 */
export function forbiddenStatus(
  info: {
    isResourceRequest: boolean;
    resource: string;
    subresource: string;
    apiGroup: string;
    name: string;
    path: string;
  },
): ForbiddenStatus {
  const why = "refused by the MCA call policy of this Pod";
  let message = `forbidden: ${why}`;
  const details: ForbiddenStatus["details"] = {};
  if (info.isResourceRequest && info.resource !== "") {
    const resource = info.subresource
      ? `${info.resource}/${info.subresource}`
      : info.resource;
    const qualified = info.apiGroup ? `${resource}.${info.apiGroup}` : resource;
    message = info.name
      ? `${qualified} "${info.name}" is forbidden: ${why}`
      : `${qualified} is forbidden: ${why}`;
    if (info.name) details.name = info.name;
    if (info.apiGroup) details.group = info.apiGroup;
    details.kind = info.resource;
  } else {
    message = `forbidden: ${why} (${info.path})`;
  }
  return { ...failureStatus(403, "Forbidden", message), details };
}

/** Answers a call with {@linkcode forbiddenStatus}. */
export function writeForbidden(
  res: ServerResponse,
  info: Parameters<typeof forbiddenStatus>[0],
): { status: number; bytesIn: number; bytesOut: number } {
  const { headers, body } = statusResponse(forbiddenStatus(info));
  res.writeHead(403, headers).end(body);
  return {
    status: 403,
    bytesIn: 0,
    bytesOut: Number(headers["content-length"]),
  };
}
