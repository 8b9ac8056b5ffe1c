/**
 * `mca --webhook`: the HTTPS server in front of the pure admission code.
 * POST /inject takes an AdmissionReview, GET /healthz answers `ok`. Bad
 * bodies get HTTP 400 and a log line; nothing a client sends can crash it.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { InjectOptions } from "../inject/pod_spec.ts";
import {
  BadReviewError,
  MAX_BODY_BYTES,
  parseReview,
  review,
} from "./admission.ts";
import { readKeyPair, watchKeyPair } from "./cert_reload.ts";

/** Options of {@link startWebhook}. */
export interface WebhookOptions {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  /** The webhook's own namespace (never injected). */
  ownNamespace: string;
  /** Sidecar defaults (the inject flags). */
  defaults: InjectOptions;
  /** How often the certificate files are re-read, ms (default 1000). */
  certIntervalMs?: number;
}

/** A running webhook. */
export interface Webhook {
  readonly port: number;
  close(): Promise<void>;
}

function log(level: string, msg: string, fields: Record<string, unknown>) {
  console.log(
    JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }),
  );
}

/** Starts the server; resolves once it listens. */
export async function startWebhook(options: WebhookOptions): Promise<Webhook> {
  const pair = readKeyPair(options.certFile, options.keyFile);
  const server: Server = createServer(
    { cert: pair.cert, key: pair.key },
    (req, res) => handle(req, res, options),
  );
  const stopWatching = watchKeyPair(
    { ...options, intervalMs: options.certIntervalMs },
    {
      onChange: (next) => {
        server.setSecureContext({ cert: next.cert, key: next.key });
        log("info", "serving certificate reloaded", {
          file: options.certFile,
        });
      },
      onError: (error) =>
        log("warn", "serving certificate not reloaded", {
          error: error.message,
        }),
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log("info", "webhook ready", { host: options.host, port });
  return {
    port,
    close: () => {
      stopWatching();
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function handle(
  req: IncomingMessage,
  res: ServerResponse,
  options: WebhookOptions,
): void {
  const path = (req.url ?? "").split("?")[0];
  if (req.method === "GET" && path === "/healthz") {
    return send(res, 200, "text/plain", "ok");
  }
  if (req.method !== "POST" || path !== "/inject") {
    return send(res, 404, "text/plain", "not found: use POST /inject\n");
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  let refused = false;
  req.on("data", (chunk: Uint8Array) => {
    if (refused) return;
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      refused = true;
      badRequest(res, `the body exceeds ${MAX_BODY_BYTES} bytes`);
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on("error", () => {});
  req.on("end", () => {
    if (refused) return;
    const body = new TextDecoder().decode(Buffer.concat(chunks, size));
    try {
      const result = review(parseReview(body), options);
      log(result.log.outcome === "skipped" ? "warn" : "info", "admission", {
        ...result.log,
      });
      send(res, 200, "application/json", JSON.stringify(result.review));
    } catch (error) {
      if (error instanceof BadReviewError) {
        return badRequest(res, error.message);
      }
      log("error", "admission failed", { error: String(error) });
      send(res, 500, "text/plain", "internal error\n");
    }
  });
}

function badRequest(res: ServerResponse, message: string): void {
  log("warn", "bad admission request", { error: message });
  send(res, 400, "text/plain", `bad AdmissionReview: ${message}\n`);
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
): void {
  if (res.headersSent) return;
  res.writeHead(status, { "content-type": type });
  res.end(body);
}
