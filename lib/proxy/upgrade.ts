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
import type { ClientRequest, IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { requestOptionsFor } from "../clusters/connection.ts";
import {
  boundConnect,
  boundHead,
  type Exchange,
  HEAD_TIMEOUT_MS,
  type Outcome,
  recordFailure,
  settler,
  type Target,
} from "./exchange.ts";
import { auditIdOf, HOP_BY_HOP, targetHeaders } from "./headers.ts";

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
 * other status) reaches the client as a normal response. When no answer
 * came, the outcome carries the failure and the socket is left open for the
 * caller to answer (`respondFailureOnSocket`).
 */
export function forwardUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Uint8Array,
  target: Target,
): Promise<Outcome> {
  const exchange = settler();
  const upReq = request(requestOptionsFor(target.url, target.auth, {
    method: req.method ?? "GET",
    target: req.url ?? "/",
    headers: targetHeaders(req, target, true),
    dedicated: true,
  }));
  boundConnect(upReq, target.connectTimeoutMs);
  const bound = boundHead(upReq, target);
  socket.on("error", () => {});
  socket.on("close", () => {
    upReq.destroy();
    exchange.settle(
      exchange.outcome.status === 0
        ? "client closed the connection"
        : undefined,
    );
  });
  upReq.on("upgrade", (upRes, upSocket, upHead) => {
    answered(upRes, target, exchange);
    socket.write(rawHeadFromUpstream(upRes, true));
    splice({ socket, head }, { socket: upSocket, head: upHead }, exchange);
  });
  upReq.on("response", (upRes) => {
    answered(upRes, target, exchange);
    socket.write(rawHeadFromUpstream(upRes, false));
    upRes.on("data", (c: Uint8Array) => exchange.outcome.bytesOut += c.length);
    upRes.pipe(socket);
  });
  upReq.on(
    "error",
    (error) => failed(upReq, error, { socket, target, exchange, bound }),
  );
  upReq.end(); // an upgrade request has no body; its bytes follow the 101
  return exchange.promise;
}

function answered(
  upRes: IncomingMessage,
  target: Target,
  exchange: Exchange,
): void {
  exchange.outcome.status = upRes.statusCode ?? 502;
  target.observation?.response({
    status: exchange.outcome.status,
    auditId: auditIdOf(upRes.headers),
  });
}

/** After a `101`: each socket carries the other's bytes, untouched. */
function splice(
  app: { socket: Duplex; head: Uint8Array },
  up: { socket: Duplex; head: Uint8Array },
  exchange: Exchange,
): void {
  const { outcome } = exchange;
  if (up.head.length > 0) app.socket.write(up.head);
  if (app.head.length > 0) up.socket.write(app.head);
  outcome.bytesIn += app.head.length;
  outcome.bytesOut += up.head.length;
  up.socket.on("data", (c: Uint8Array) => outcome.bytesOut += c.length);
  app.socket.on("data", (c: Uint8Array) => outcome.bytesIn += c.length);
  up.socket.on("error", () => app.socket.destroy());
  // end(), not destroy(): the last frames (SPDY exec status, exit code)
  // may still be queued for the app when the upstream closes.
  up.socket.on("close", () => app.socket.end(() => app.socket.destroy()));
  app.socket.on("close", () => up.socket.destroy());
  up.socket.pipe(app.socket);
  app.socket.pipe(up.socket);
}

/** No answer came: report it (the caller answers), or drop the app. */
function failed(
  upReq: ClientRequest,
  error: Error,
  args: {
    socket: Duplex;
    target: Target;
    exchange: Exchange;
    bound: { timedOut(): boolean };
  },
): void {
  const { socket, target, exchange } = args;
  recordFailure(exchange, error, {
    target,
    timedOutMs: args.bound.timedOut()
      ? target.headTimeoutMs ?? HEAD_TIMEOUT_MS
      : undefined,
    answerable: socket.writable,
  });
  if (exchange.outcome.failure === undefined) socket.destroy();
  upReq.destroy();
  exchange.settle(error.message);
}
