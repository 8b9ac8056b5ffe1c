/**
 * Forwarding of answers that may be large (LISTs, discovery documents)
 * through `fetch`, which applies back-pressure: it reads from the API server
 * only as fast as the app takes the bytes, so a 200 MB LIST passes in
 * constant memory. (Deno's `node:https` client keeps reading a response MCA
 * has paused and buffers it whole; ADR 0007.)
 *
 * Only calls without a request body come here; watches stay on the
 * `node:https` path, which costs less CPU per small call. `fetch` decodes
 * gzip itself, so such answers reach the app decoded, without
 * `Content-Encoding` and `Content-Length`.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { lastChunkHolder, upstreamHref } from "../clusters/connection.ts";
import {
  type Exchange,
  HEAD_TIMEOUT_MS,
  type Outcome,
  recordFailure,
  settler,
  type Target,
} from "./exchange.ts";
import { HOP_BY_HOP, targetHeaders } from "./headers.ts";

/**
 * Forwards one bodiless call with `fetch` and streams the answer back with
 * back-pressure. Resolves when the exchange is over; never rejects.
 */
export function forwardFetch(
  req: IncomingMessage,
  res: ServerResponse,
  target: Target & { client: Deno.HttpClient },
): Promise<Outcome> {
  const exchange = settler();
  const aborter = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) {
      aborter.abort();
      exchange.settle("client closed the connection");
    }
  });
  // A large LIST starts late, but never later than the API server's own
  // request timeout (see HEAD_TIMEOUT_MS).
  const headMs = Math.max(
    target.connectTimeoutMs,
    target.headTimeoutMs ?? HEAD_TIMEOUT_MS,
  );
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    aborter.abort(new Error(`no answer within ${headMs} ms`));
  }, headMs);
  fetch(upstreamHref(target.url, req.url ?? "/"), {
    method: req.method,
    headers: fetchHeaders(req, target),
    client: target.client,
    signal: aborter.signal,
    redirect: "manual",
  }).then(
    (answer) => {
      clearTimeout(timer);
      return relayAnswer(answer, res, { target, exchange });
    },
    (error: Error) => {
      clearTimeout(timer);
      recordFailure(exchange, error, {
        target,
        timedOutMs: timedOut ? headMs : undefined,
        answerable: !res.headersSent && !res.writableEnded && !res.destroyed,
      });
      exchange.settle(error.message);
    },
  );
  return exchange.promise;
}

/** The request headers as `fetch` takes them (it sets the length itself). */
function fetchHeaders(req: IncomingMessage, target: Target): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(targetHeaders(req, target))) {
    if (value === undefined || name === "content-length") continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      headers.append(name, String(v));
    }
  }
  return headers;
}

/** The answer's headers for the app: no hop-by-hop, decoded bodies unsized. */
function responseHeaders(answer: Response): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const decoded = answer.headers.has("content-encoding");
  for (const [name, value] of answer.headers) {
    if (HOP_BY_HOP.has(name) || name === "set-cookie") continue;
    if (
      decoded && (name === "content-encoding" || name === "content-length")
    ) {
      continue;
    }
    out[name] = value;
  }
  const cookies = answer.headers.getSetCookie();
  if (cookies.length > 0) out["set-cookie"] = cookies;
  return out;
}

/** Writes the answer to the app, reading only as fast as the app takes it. */
async function relayAnswer(
  answer: Response,
  res: ServerResponse,
  args: { target: Target; exchange: Exchange },
): Promise<void> {
  const { outcome, settle } = args.exchange;
  outcome.status = answer.status;
  args.target.observation?.response({
    status: answer.status,
    auditId: answer.headers.get("audit-id") ?? undefined,
  });
  const headers = responseHeaders(answer);
  res.writeHead(answer.status, answer.statusText, headers);
  if (answer.body === null) {
    res.end();
    return settle();
  }
  const chunks = lastChunkHolder(headers["content-length"] !== undefined);
  try {
    for await (const chunk of answer.body) {
      outcome.bytesOut += chunk.length;
      const next = chunks.next(chunk);
      if (next !== undefined && !res.write(next)) await drained(res);
      if (res.destroyed) break;
    }
    res.end(chunks.last());
    settle();
  } catch (error) {
    res.destroy();
    settle(`upstream response: ${(error as Error).message}`);
  }
}

function drained(res: ServerResponse): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  const done = () => {
    res.off("drain", done);
    res.off("close", done);
    resolve();
  };
  res.on("drain", done);
  res.on("close", done);
  return promise;
}
