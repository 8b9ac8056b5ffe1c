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
import {
  gatewayTimeout,
  HEAD_TIMEOUT_MS,
  HOP_BY_HOP,
  type Outcome,
  settler,
  type Target,
  targetHeaders,
  unavailable,
} from "./transport.ts";

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

/**
 * Forwards one bodiless call with `fetch` and streams the answer back with
 * back-pressure. Resolves when the exchange is over; never rejects.
 */
export function forwardFetch(
  req: IncomingMessage,
  res: ServerResponse,
  target: Target & { client: Deno.HttpClient },
): Promise<Outcome> {
  const { promise, outcome, settle } = settler();
  const headers = new Headers();
  for (
    const [name, value] of Object.entries(
      targetHeaders(req, target),
    )
  ) {
    if (value === undefined || name === "content-length") continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      headers.append(name, String(v));
    }
  }
  const aborter = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) {
      aborter.abort();
      settle("client closed the connection");
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
  const url = new URL(target.url);
  const prefix = url.pathname.replace(/\/+$/, "");
  (async () => {
    let answer: Response;
    try {
      answer = await fetch(`${url.origin}${prefix}${req.url ?? "/"}`, {
        method: req.method,
        headers,
        client: target.client,
        signal: aborter.signal,
        redirect: "manual",
      });
    } catch (error) {
      clearTimeout(timer);
      target.observation?.failed(
        timedOut ? "timeout" : "unreachable",
        (error as Error).message,
      );
      if (res.writableEnded || res.destroyed) return settle();
      if (timedOut && !res.headersSent) {
        const { headers, body } = gatewayTimeout(target, headMs);
        outcome.status = 504;
        res.writeHead(504, headers).end(body);
      } else if (target.retryable && !res.headersSent) {
        outcome.unreachable = true;
      } else if (!res.headersSent) {
        const { headers, body } = unavailable(target, error as Error);
        outcome.status = 503;
        outcome.unreachable = true;
        res.writeHead(503, headers).end(body);
      }
      return settle((error as Error).message);
    }
    clearTimeout(timer);
    outcome.status = answer.status;
    target.observation?.response({
      status: answer.status,
      auditId: answer.headers.get("audit-id") ?? undefined,
    });
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
    res.writeHead(answer.status, answer.statusText, out);
    if (answer.body === null) {
      res.end();
      return settle();
    }
    // A sized body's last chunk goes to end() (see transport.ts).
    const sized = out["content-length"] !== undefined;
    let held: Uint8Array | undefined;
    try {
      for await (const chunk of answer.body) {
        outcome.bytesOut += chunk.length;
        const next = sized ? held : chunk;
        held = sized ? chunk : undefined;
        if (next !== undefined && !res.write(next)) await drained(res);
        if (res.destroyed) break;
      }
      res.end(held);
      settle();
    } catch (error) {
      res.destroy();
      settle(`upstream response: ${(error as Error).message}`);
    }
  })();
  return promise;
}
