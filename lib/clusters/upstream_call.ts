/**
 * One call to one cluster whose answer MCA reads itself (instead of piping
 * it to the app): the building block of fan-out LIST/WATCH, by-name search
 * across clusters, and namespace rewriting. Bodies sent are small (MCA reads
 * them only for creates and updates); answers are read whole (objects and
 * lists) or line by line (watches).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { request } from "node:https";
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { Upstream } from "./upstream.ts";
import { requestOptionsFor } from "./connection.ts";
import {
  type UpstreamObservation,
  withObserverHeaders,
} from "../observe/observer.ts";

/** What to send. */
export interface CallOptions {
  method: string;
  /** Request target: path and query. */
  target: string;
  /** Headers without credentials; the upstream's are added. */
  headers: OutgoingHttpHeaders;
  body?: Uint8Array;
  /** A connection of its own (watches). */
  dedicated?: boolean;
  connectTimeoutMs: number;
  /** Aborts the call (the app went away). */
  signal?: AbortSignal;
  /** Told the response head or the failure; may add headers (traces). */
  observation?: UpstreamObservation;
}

/** Sends a call and resolves with the response head (body unread). */
export async function callUpstream(
  upstream: Upstream,
  options: CallOptions,
): Promise<IncomingMessage> {
  const auth = await upstream.auth();
  const headers: OutgoingHttpHeaders = withObserverHeaders(
    { ...options.headers },
    options.observation?.headers,
  );
  if (auth.authorization) headers["authorization"] = auth.authorization;
  delete headers["content-length"];
  delete headers["transfer-encoding"];
  if (options.body !== undefined) {
    headers["content-length"] = String(options.body.length);
  }
  const { promise, resolve, reject } = Promise.withResolvers<IncomingMessage>();
  const req = request(
    requestOptionsFor(upstream.url, auth, {
      method: options.method,
      target: options.target,
      headers,
      dedicated: options.dedicated,
      signal: options.signal,
    }),
    resolve,
  );
  const timer = setTimeout(() => {
    req.destroy(new Error(`no answer within ${options.connectTimeoutMs} ms`));
  }, options.connectTimeoutMs);
  req.once("response", (res: IncomingMessage) => {
    clearTimeout(timer);
    options.observation?.response({
      status: res.statusCode ?? 502,
      auditId: headerValue(res.headers["audit-id"]),
    });
  });
  let answered = false;
  req.once("response", () => answered = true);
  req.once("error", (error) => {
    clearTimeout(timer);
    if (!answered) options.observation?.failed("unreachable", error.message);
    reject(error);
  });
  req.once("close", () => clearTimeout(timer));
  req.end(options.body);
  return await promise;
}

/** Reads a whole answer; refuses bodies larger than `limit` bytes. */
export function readBody(
  res: IncomingMessage,
  limit = 512 * 1024 * 1024,
): Promise<Uint8Array> {
  const { promise, resolve, reject } = Promise.withResolvers<Uint8Array>();
  const chunks: Uint8Array[] = [];
  let size = 0;
  res.on("data", (chunk: Uint8Array) => {
    size += chunk.length;
    if (size > limit) {
      res.destroy(new Error(`answer larger than ${limit} bytes`));
      return;
    }
    chunks.push(chunk);
  });
  res.on("error", reject);
  res.on("end", () => resolve(Buffer.concat(chunks, size)));
  return promise;
}

/** Reads a JSON answer; undefined if it is not JSON. */
export async function readJson(res: IncomingMessage): Promise<unknown> {
  const body = await readBody(res);
  try {
    return JSON.parse(new TextDecoder().decode(body));
  } catch {
    return undefined;
  }
}

/** Yields the lines of a streaming answer (watch events) as they arrive. */
export async function* readLines(res: IncomingMessage): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (line !== "") yield line;
    }
  }
  if (buffer.trim() !== "") yield buffer.trim();
}

/** One value of a response header (the first when repeated). */
export function headerValue(
  value: string | string[] | undefined,
): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
