/**
 * Relaying protocol upgrades: `exec`, `attach` and `port-forward` over
 * SPDY/3.1 or WebSocket (`*.channel.k8s.io`). After the upstream's `101` the
 * app's socket and a dedicated upstream socket are spliced and bytes flow
 * untouched both ways; an upstream refusal (any other status) reaches the app
 * as a normal response. Like the rest of the transport, it knows nothing of
 * routing.
 *
 * @module
 */

import { request } from "node:https";
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { Duplex } from "node:stream";
import {
  auditIdOf,
  boundConnect,
  boundHead,
  gatewayTimeout,
  HEAD_TIMEOUT_MS,
  HOP_BY_HOP,
  type Outcome,
  requestOptions,
  settler,
  type Target,
  targetHeaders,
  unavailable,
} from "./transport.ts";

function rawHead(
  status: number,
  message: string,
  headers: OutgoingHttpHeaders,
): string {
  let head = `HTTP/1.1 ${status} ${message}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== undefined) head += `${name}: ${v}\r\n`;
    }
  }
  return head + "\r\n";
}

function rawHeadFromUpstream(res: IncomingMessage, keep: boolean): string {
  let head = `HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ""}\r\n`;
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (!keep && (HOP_BY_HOP.has(name) || name === "content-length")) continue;
    head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  if (!keep) head += "Connection: close\r\n";
  return head + "\r\n";
}

/**
 * Relays an upgrade request (SPDY/3.1 or WebSocket): the request goes
 * upstream on a dedicated connection; after the upstream's `101` the two
 * sockets are spliced and bytes flow untouched. An upstream refusal (any
 * other status) reaches the client as a normal response.
 */
export function forwardUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Uint8Array,
  target: Target,
): Promise<Outcome> {
  const { promise, outcome, settle } = settler();
  const upReq = request({
    ...requestOptions(
      req,
      target,
      targetHeaders(req, target, true),
    ),
    ...target.auth.tls,
    agent: false,
  });
  boundConnect(upReq, target.connectTimeoutMs);
  const bound = boundHead(upReq, target);
  socket.on("error", () => {});
  socket.on("close", () => {
    upReq.destroy();
    settle(outcome.status === 0 ? "client closed the connection" : undefined);
  });

  upReq.on("upgrade", (upRes, upSocket, upHead) => {
    outcome.status = upRes.statusCode ?? 101;
    target.observation?.response({
      status: outcome.status,
      auditId: auditIdOf(upRes.headers),
    });
    socket.write(rawHeadFromUpstream(upRes, true));
    if (upHead.length > 0) socket.write(upHead);
    if (head.length > 0) upSocket.write(head);
    outcome.bytesIn += head.length;
    outcome.bytesOut += upHead.length;
    upSocket.on("data", (c: Uint8Array) => outcome.bytesOut += c.length);
    socket.on("data", (c: Uint8Array) => outcome.bytesIn += c.length);
    upSocket.on("error", () => socket.destroy());
    // end(), not destroy(): the last frames (SPDY exec status, exit code)
    // may still be queued for the app when the upstream closes.
    upSocket.on("close", () => socket.end(() => socket.destroy()));
    socket.on("close", () => upSocket.destroy());
    upSocket.pipe(socket);
    socket.pipe(upSocket);
  });
  upReq.on("response", (upRes) => {
    outcome.status = upRes.statusCode ?? 502;
    target.observation?.response({
      status: outcome.status,
      auditId: auditIdOf(upRes.headers),
    });
    socket.write(rawHeadFromUpstream(upRes, false));
    upRes.on("data", (c: Uint8Array) => outcome.bytesOut += c.length);
    upRes.pipe(socket);
  });
  upReq.on("error", (error) => {
    if (outcome.status === 0) {
      target.observation?.failed("unreachable", error.message);
    }
    if (outcome.status === 0 && socket.writable) {
      const timedOut = bound.timedOut();
      const { headers, body } = timedOut
        ? gatewayTimeout(target, target.headTimeoutMs ?? HEAD_TIMEOUT_MS)
        : unavailable(target, error);
      outcome.status = timedOut ? 504 : 503;
      socket.end(
        rawHead(
          outcome.status,
          timedOut ? "Gateway Timeout" : "Service Unavailable",
          {
            ...headers,
            connection: "close",
          },
        ) + body,
      );
    } else {
      socket.destroy();
    }
    settle(error.message);
  });
  upReq.end(); // an upgrade request has no body; its bytes follow the 101
  return promise;
}
