/**
 * The TLS listener: accepts the apps' connections and hands every call to
 * the handlers the caller injects (the pipeline, lib/pipeline/). It knows
 * nothing of routing, policy or observers.
 *
 * The listener is `node:https` (HTTP/1.1, ALPN `http/1.1`): it is the Deno
 * API that hands over the raw socket of an upgrade, which exec, attach and
 * port-forward need (see design/decisions/0007-listener-and-transport.md).
 *
 * @module
 */

import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { AddressInfo } from "node:net";
import {
  failureStatus,
  writeSocketStatus,
  writeStatus,
} from "../kube/status.ts";
import { type Deadline, deadline } from "./deadlines.ts";

/** What the listener calls for each request. */
export interface Handlers {
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Uint8Array): void;
}

/** Where and how to listen. */
export interface ListenerOptions {
  /** Addresses to listen on, e.g. `["127.0.0.1"]`. */
  hosts: string[];
  /** Addresses to listen on when they exist (`::1` without IPv6 does not). */
  optionalHosts?: string[];
  /** Port on every address; 0 picks a free one (tests). */
  port: number;
  /** Serving certificate and key (PEM). */
  certPem: string;
  keyPem: string;
  /**
   * Bound on receiving a request's head (60 s): a client that trickles its
   * headers (slowloris) is disconnected after it.
   */
  headersTimeoutMs?: number;
}

/** A running listener. */
export interface Listener {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** The addresses actually listened on. */
  hosts: string[];
  /** Stops listening, ends every connection, resolves when all are closed. */
  close(): Promise<void>;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  const { promise, resolve, reject } = Promise.withResolvers<number>();
  server.once("error", reject);
  server.listen(port, host, () => {
    server.off("error", reject);
    resolve((server.address() as AddressInfo).port);
  });
  return promise;
}

/** How long a kept-alive connection may wait for its next request. */
const KEEP_ALIVE_MS = 90_000;

/**
 * Bounds on the wait for a request's head, per connection. Deno's
 * `node:https` server does not apply `headersTimeout`: a client trickling
 * one header byte at a time (slowloris) held a connection open for as long
 * as it liked. The first head must come within `firstMs` of the TLS
 * handshake, each later one within `nextMs` of the previous answer.
 */
function headDeadlines(bounds: { firstMs: number; nextMs: number }) {
  const timers = new WeakMap<object, Deadline>();
  // Requests of a connection still being answered (pipelining): the wait
  // for the next head starts only when none is.
  const open = new WeakMap<object, number>();
  const arm = (socket: Duplex, ms: number) => {
    timers.get(socket)?.cancel();
    timers.set(socket, deadline(ms, () => socket.destroy()));
  };
  return {
    awaitFirst: (socket: Duplex) => {
      socket.once("close", () => timers.get(socket)?.cancel());
      arm(socket, bounds.firstMs);
    },
    arrived: (socket: Duplex) => {
      timers.get(socket)?.cancel();
      open.set(socket, (open.get(socket) ?? 0) + 1);
    },
    answered: (socket: Duplex) => {
      const left = (open.get(socket) ?? 1) - 1;
      open.set(socket, left);
      if (left === 0 && !socket.destroyed) arm(socket, bounds.nextMs);
    },
  };
}

function tlsServer(
  options: ListenerOptions,
  handlers: Handlers,
  sockets: Set<Duplex>,
): Server {
  const server = createServer({
    cert: options.certPem,
    key: options.keyPem,
    ALPNProtocols: ["http/1.1"],
    keepAliveTimeout: KEEP_ALIVE_MS,
    requestTimeout: 0, // watches and long LISTs are legitimate
    headersTimeout: options.headersTimeoutMs ?? 60_000,
  }, (req, res) => {
    heads.arrived(req.socket);
    res.once("close", () => heads.answered(req.socket));
    // kube-apiserver speaks HTTP/1.0 and 1.1 only; an HTTP/0.9 line must
    // not become an API call.
    if (req.httpVersionMajor !== 1) {
      return void writeStatus(
        res,
        400,
        "BadRequest",
        `mca: HTTP/${req.httpVersion} is not supported: use HTTP/1.1`,
      );
    }
    handlers.request(req, res);
  });
  const heads = headDeadlines({
    firstMs: options.headersTimeoutMs ?? 60_000,
    nextMs: KEEP_ALIVE_MS,
  });
  server.on("secureConnection", (socket: Duplex) => heads.awaitFirst(socket));
  server.on("upgrade", (req, socket, head) => {
    heads.arrived(socket);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    if (/\bh2c\b/i.test(String(req.headers.upgrade ?? ""))) {
      return refuse(
        socket,
        400,
        "an h2c upgrade is not supported: speak HTTP/1.1 over TLS",
      );
    }
    handlers.upgrade(req, socket, head);
  });
  server.on("connect", (_req, socket: Duplex) => {
    refuse(socket, 405, "CONNECT is not supported: send the API call itself");
  });
  server.on("clientError", (error, socket) => refuseMalformed(error, socket));
  return server;
}

/** Answers a raw socket with a `Status` and closes it. */
function refuse(socket: Duplex, code: number, message: string): void {
  const reason = code === 405
    ? "MethodNotAllowed"
    : code === 431
    ? "RequestHeaderFieldsTooLarge"
    : "BadRequest";
  // end(), not destroy(): the answer must reach the client first.
  writeSocketStatus(socket, failureStatus(code, reason, `mca: ${message}`));
}

/**
 * Bytes that do not parse as HTTP/1.1 (smuggling attempts, header floods,
 * bad chunks, control characters) get a `Status` naming the parser's
 * verdict, never an echo of what was sent, and the connection is closed: a
 * stream whose framing is in doubt must not carry another request. A
 * response already on its way is cut instead.
 */
function refuseMalformed(error: Error, socket: Duplex): void {
  const code = (error as { code?: string }).code ?? "";
  const started = (socket as { _httpMessage?: { headersSent?: boolean } })
    ._httpMessage?.headersSent;
  if (!socket.writable || started || !code.startsWith("HPE_")) {
    return void socket.destroy();
  }
  if (code === "HPE_HEADER_OVERFLOW") {
    return refuse(socket, 431, "the request's headers are too large");
  }
  refuse(socket, 400, `the request is not valid HTTP/1.1 (${code})`);
}

/**
 * Starts listening on every address (all on the same port) and serves until
 * closed. Rejects if any address cannot be bound.
 */
export async function startListener(
  options: ListenerOptions,
  handlers: Handlers,
): Promise<Listener> {
  const servers: Server[] = [];
  const sockets = new Set<Duplex>();
  const bound: string[] = [];
  let port = options.port;
  const optional = options.optionalHosts ?? [];
  try {
    for (const host of [...options.hosts, ...optional]) {
      const server = tlsServer(options, handlers, sockets);
      try {
        port = await listen(server, host, port);
      } catch (error) {
        if (optional.includes(host)) continue;
        throw new Error(`${host}: ${(error as Error).message}`);
      }
      servers.push(server);
      bound.push(host);
    }
  } catch (error) {
    await Promise.all(servers.map(closeServer));
    throw new Error(
      `cannot listen on port ${options.port}: ${(error as Error).message}`,
    );
  }
  return {
    port,
    hosts: bound,
    async close() {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map(closeServer));
    },
  };
}

function closeServer(server: Server): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  if (!server.listening) return Promise.resolve();
  server.close(() => resolve());
  server.closeAllConnections();
  return promise;
}
