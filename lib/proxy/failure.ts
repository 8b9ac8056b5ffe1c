/**
 * The one error responder of the upstream clients. A client that could not
 * get an answer from an upstream reports what went wrong and writes
 * nothing; the caller decides, with what it knows of routing, whether to try
 * another cluster or to answer the app, and then answers through here. This
 * keeps the transport free of routing (no "is there a fallback?" flag) and
 * gives every such answer the same `Status` shape (a 503 with `Retry-After`,
 * which client-go retries; a 504 for an upstream that took the call but sent
 * no head in time).
 *
 * Messages name the upstream's address and the socket's error, never a
 * header value or a credential.
 *
 * @module
 */

import type { ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import {
  failureStatus,
  type Status,
  statusResponse,
  writeSocketStatus,
} from "../kube/status.ts";

/** Why an upstream gave no answer. */
export interface UpstreamFailure {
  /**
   * `unreachable`: no connection or it broke before the head (another
   * cluster may be tried); `timeout`: it took the call but sent no head in
   * time (no failover: the call may have had effects).
   */
  kind: "unreachable" | "timeout";
  /** The upstream's origin, e.g. `https://10.96.0.1:443`. */
  origin: string;
  /** The socket's error message. */
  message: string;
  /** For `timeout`: how long MCA waited. */
  afterMs?: number;
}

/** The `Status` MCA answers for a failure. */
export function failureToStatus(failure: UpstreamFailure): Status {
  if (failure.kind === "timeout") {
    return failureStatus(
      504,
      "Timeout",
      `mca: the API server ${failure.origin} sent no answer within ${failure.afterMs} ms`,
    );
  }
  return failureStatus(
    503,
    "ServiceUnavailable",
    `mca: the API server ${failure.origin} is unreachable: ${failure.message}`,
  );
}

/** How a failed call ended, as the observers count it. */
interface Answered {
  status: number;
  bytesOut: number;
}

/**
 * Answers the app for a failure, if it can still be answered (nothing sent,
 * connection open); otherwise drops the connection. Returns the status and
 * bytes written (status 0 when nothing could be written).
 */
export function respondFailure(
  res: ServerResponse,
  failure: UpstreamFailure,
): Answered {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return { status: 0, bytesOut: 0 };
  }
  const status = failureToStatus(failure);
  const { headers, body } = statusResponse(status, { retryAfterSeconds: 1 });
  res.writeHead(status.code, headers).end(body);
  return { status: status.code, bytesOut: Number(headers["content-length"]) };
}

/** {@linkcode respondFailure} for an upgrade's raw socket. */
export function respondFailureOnSocket(
  socket: Duplex,
  failure: UpstreamFailure,
): Answered {
  if (!socket.writable) {
    socket.destroy();
    return { status: 0, bytesOut: 0 };
  }
  return writeSocketStatus(socket, failureToStatus(failure), {
    retryAfterSeconds: 1,
  });
}
