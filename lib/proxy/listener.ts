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

function tlsServer(
  options: ListenerOptions,
  handlers: Handlers,
  sockets: Set<Duplex>,
): Server {
  const server = createServer({
    cert: options.certPem,
    key: options.keyPem,
    ALPNProtocols: ["http/1.1"],
    keepAliveTimeout: 90_000,
    requestTimeout: 0, // watches and long LISTs are legitimate
    headersTimeout: 60_000,
  }, (req, res) => handlers.request(req, res));
  server.on("upgrade", (req, socket, head) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    handlers.upgrade(req, socket, head);
  });
  server.on("clientError", (_error, socket) => socket.destroy());
  return server;
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
