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

import type { ServerResponse } from "node:http";

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
  return { status: code, bytesIn: 0, bytesOut: body.length };
}
