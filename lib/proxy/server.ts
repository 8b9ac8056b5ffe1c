/**
 * The proxy: a TLS listener whose every call runs one pipeline
 *
 *   accept → parse (RequestInfo) → decide (route) → forward (transport)
 *          → observe (log)
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
import { parseRequestInfo } from "../kube/request_info.ts";
import { type CallRecord, formatCall, type LogSink } from "../observe/log.ts";
import type { Outcome } from "./transport.ts";
import { forwardUpgrade } from "./upgrade.ts";
import { dispatch } from "../multicluster/dispatch.ts";
import { LOCAL_CLUSTER, Router } from "../routing/router.ts";
import type { RoutingSource } from "../routing/source.ts";
import { READY_PATH } from "../sidecar/probe.ts";
import { failureStatus, statusResponse } from "../kube/status.ts";

/** What the proxy needs to run. */
export interface ProxyOptions {
  /** Addresses to listen on, e.g. `["127.0.0.1"]`. */
  hosts: string[];
  /** Addresses to listen on when they exist (`::1` without IPv6 does not). */
  optionalHosts?: string[];
  /** Port on every address; 0 picks a free one (tests). */
  port: number;
  /** Serving certificate and key (PEM). */
  certPem: string;
  keyPem: string;
  /** Clusters and rules (with no rules, every call goes to `local`). */
  routing: RoutingSource;
  /** Where log lines go. */
  log: LogSink;
  /** Bound on connecting to the upstream; 10 s by default. */
  connectTimeoutMs?: number;
}

/** A running proxy. */
export interface Proxy {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** The addresses actually listened on. */
  hosts: string[];
  /** Stops listening, ends every connection, resolves when all are closed. */
  close(): Promise<void>;
}

export { LOCAL_CLUSTER };

function userAgent(req: IncomingMessage): string | undefined {
  const ua = req.headers["user-agent"];
  return Array.isArray(ua) ? ua[0] : ua;
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  options: ProxyOptions,
  router: Router,
): Promise<void> {
  const started = performance.now(); // accept
  const info = parseRequestInfo(req.method ?? "GET", req.url ?? "/"); // parse
  if (info.path === READY_PATH) {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    return;
  }
  let cluster = LOCAL_CLUSTER;
  let outcome: Outcome;
  try {
    // decide + forward
    const done = await dispatch(req, res, info, {
      state: options.routing.current,
      router,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    });
    cluster = done.cluster;
    outcome = done.outcome;
  } catch (error) {
    outcome = internalError(res, error as Error);
  }
  observe(options, { // observe
    info,
    method: req.method ?? "",
    cluster,
    ...outcome,
    durationMs: performance.now() - started,
    userAgent: userAgent(req),
  });
}

/** Credentials could not be read: answer a Status instead of hanging. */
function internalError(res: ServerResponse, error: Error): Outcome {
  const { headers, body } = statusResponse(
    failureStatus(
      503,
      "ServiceUnavailable",
      `mca: cannot authenticate to the API server: ${error.message}`,
    ),
    { retryAfterSeconds: 1 },
  );
  if (!res.headersSent) res.writeHead(503, headers).end(body);
  return { status: 503, bytesIn: 0, bytesOut: 0, error: error.message };
}

async function handleUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Uint8Array,
  options: ProxyOptions,
  router: Router,
): Promise<void> {
  const started = performance.now();
  const info = parseRequestInfo(req.method ?? "GET", req.url ?? "/");
  // exec/attach/port-forward name one pod: a spread set is asked in order.
  const plan = router.plan(info);
  const cluster = plan.kind === "one"
    ? plan.cluster
    : plan.clusters[0] ?? LOCAL_CLUSTER;
  let outcome: Outcome;
  try {
    const upstream = options.routing.current.registry.get(cluster);
    outcome = await forwardUpgrade(req, socket, head, {
      url: upstream.url,
      auth: await upstream.auth(),
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    });
  } catch (error) {
    socket.destroy();
    outcome = {
      status: 503,
      bytesIn: 0,
      bytesOut: 0,
      error: (error as Error).message,
    };
  }
  observe(options, {
    info,
    method: req.method ?? "",
    cluster,
    ...outcome,
    durationMs: performance.now() - started,
    userAgent: userAgent(req),
    upgrade: true,
  });
}

function observe(options: ProxyOptions, record: CallRecord): void {
  options.log(formatCall(record));
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

/**
 * Starts listening on every address (all on the same port) and serves until
 * closed. Rejects if any address cannot be bound.
 */
export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const servers: Server[] = [];
  const sockets = new Set<Duplex>();
  const router = new Router(
    () => options.routing.current.config,
    (cluster) => options.routing.current.registry.isHealthy(cluster),
  );
  const bound: string[] = [];
  let port = options.port;
  const optional = options.optionalHosts ?? [];
  try {
    for (const host of [...options.hosts, ...optional]) {
      const server = createServer({
        cert: options.certPem,
        key: options.keyPem,
        ALPNProtocols: ["http/1.1"],
        keepAliveTimeout: 90_000,
        requestTimeout: 0, // watches and long LISTs are legitimate
        headersTimeout: 60_000,
      }, (req, res) => {
        handle(req, res, options, router);
      });
      server.on("upgrade", (req, socket, head) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        handleUpgrade(req, socket, head, options, router);
      });
      server.on("clientError", (_error, socket) => socket.destroy());
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
