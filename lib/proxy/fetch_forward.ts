/**
 * Forwarding of answers that may be large (LISTs, discovery documents)
 * through `fetch`, which applies back-pressure: it reads from the API server
 * only as fast as the app takes the bytes, so a 200 MB LIST passes in
 * constant memory. (Deno's `node:https` client keeps reading a response MCA
 * has paused and buffers it whole; ADR 0007.)
 *
 * Only calls without a request body come here. Watches come here too,
 * through the cluster's stream clients (HTTP/2 where the API server
 * offers it), but are read on without back-pressure (see
 * `relayAnswer`). `fetch` decodes gzip itself, so such answers reach the
 * app decoded, without `Content-Encoding` and `Content-Length`.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { tlsReachable, upstreamHref } from "../clusters/connection.ts";
import {
  boundedCopy,
  type Exchange,
  HEAD_TIMEOUT_MS,
  type Outcome,
  recordFailure,
  settler,
  type Target,
} from "./exchange.ts";
import { bodyChunks, streamChunks } from "./body_chunks.ts";
import { coalescer } from "./coalesce.ts";
import { HOP_BY_HOP, targetHeaders } from "./headers.ts";
import {
  fellBehind,
  forwardHttp,
  STREAM_MAX_BEHIND_BYTES,
} from "./transport.ts";

/**
 * Forwards one bodiless call with `fetch` and streams the answer back with
 * back-pressure. Resolves when the exchange is over; never rejects.
 */
export function forwardFetch(
  req: IncomingMessage,
  res: ServerResponse,
  target: Target & { client: Deno.HttpClient; watch?: boolean },
): Promise<Outcome> {
  const exchange = settler();
  const aborter = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) {
      aborter.abort();
      exchange.settle("client closed the connection");
    }
  });
  const deadline = headDeadline(target, aborter);
  fetch(upstreamHref(target.url, req.url ?? "/"), {
    method: req.method,
    headers: fetchHeaders(req, target),
    client: target.client,
    signal: aborter.signal,
    redirect: "manual",
  }).then(
    (answer) => {
      deadline.clear();
      return relayAnswer(answer, res, { target, exchange, aborter });
    },
    (error: Error) => {
      deadline.clear();
      const answerable = !res.headersSent && !res.writableEnded &&
        !res.destroyed;
      if (answerable && headTooLarge(error)) {
        // The answer came, but its head is beyond what `fetch` reads (100
        // header lines): ask again where the head has no such limit. Only
        // bodiless calls come here, so the call can be sent again.
        return forwardHttp(req, res, target).then((outcome) => {
          Object.assign(exchange.outcome, outcome);
          exchange.settle(outcome.error);
        });
      }
      recordFailure(exchange, error, {
        target,
        timedOutMs: deadline.timedOutMs(),
        answerable,
      });
      exchange.settle(error.message);
    },
  );
  return exchange.promise;
}

/**
 * Bounds the wait for the head. `fetch` has no connect timeout of its own:
 * when the head is late by the connect timeout, a fresh TLS handshake tells
 * whether the upstream can be reached at all; if not, the call fails as
 * `unreachable` (the caller may fail over), otherwise it waits on. A large
 * LIST starts late, but never later than the API server's own request
 * timeout (see `HEAD_TIMEOUT_MS`): past that it fails as `timeout`.
 */
function headDeadline(target: Target, aborter: AbortController): {
  clear(): void;
  timedOutMs(): number | undefined;
} {
  const headMs = Math.max(
    target.connectTimeoutMs,
    target.headTimeoutMs ?? HEAD_TIMEOUT_MS,
  );
  let timedOut = false;
  let cleared = false;
  const timer = setTimeout(() => {
    timedOut = true;
    aborter.abort(new Error(`no answer within ${headMs} ms`));
  }, headMs);
  const probe = setTimeout(async () => {
    const reachable = await tlsReachable(target.url, {
      auth: target.auth,
      timeoutMs: target.connectTimeoutMs,
    });
    if (!reachable && !cleared && !timedOut) {
      aborter.abort(
        new Error(`no TLS connection within ${target.connectTimeoutMs} ms`),
      );
    }
  }, target.connectTimeoutMs);
  return {
    clear() {
      cleared = true;
      clearTimeout(timer);
      clearTimeout(probe);
    },
    timedOutMs: () => timedOut ? headMs : undefined,
  };
}

/** Request headers `fetch` fills in by itself when they are missing. */
const FETCH_DEFAULTS = ["accept", "accept-language", "user-agent"];

/** `fetch` refuses an answer whose head has more than 100 header lines. */
function headTooLarge(error: Error): boolean {
  return /message head is too large/.test(String(error.cause ?? ""));
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
  // Without it `fetch` would ask for gzip (and decode it): the upstream
  // would compress an answer the app did not ask to have compressed.
  if (!headers.has("accept-encoding")) {
    headers.set("accept-encoding", "identity");
  }
  // `fetch` adds its own values of these when a request has none (`*/*`,
  // `*`, `Deno/<version>`). An empty field goes out instead, which
  // kube-apiserver (Go's `Header.Get`) reads exactly as an absent one.
  for (const name of FETCH_DEFAULTS) {
    if (!headers.has(name)) headers.set(name, "");
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
    // `Headers` joins repeated fields; each warning stays its own field.
    out[name] = name === "warning" ? splitWarnings(value) : value;
  }
  const cookies = answer.headers.getSetCookie();
  if (cookies.length > 0) out["set-cookie"] = cookies;
  return out;
}

/**
 * The warnings of a `Warning` field that `Headers` joined with ", ". A
 * warning's text is a quoted string that may itself hold commas, so the
 * split happens only at commas outside quotes (RFC 7234 5.5).
 *
 * @example
 * ```ts
 * splitWarnings('299 - "a, b", 299 - "c"'); // ['299 - "a, b"', '299 - "c"']
 * ```
 */
export function splitWarnings(value: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted && c === "\\") i++;
    else if (c === '"') quoted = !quoted;
    else if (c === "," && !quoted) {
      out.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(value.slice(start).trim());
  return out.filter((w) => w !== "");
}

/**
 * Writes the answer to the app, reading only as fast as the app takes it —
 * except a watch's: that is read on at once, every event written, and
 * closed when the app is {@linkcode STREAM_MAX_BEHIND_BYTES} behind, as on
 * the `node:https` path (kube-apiserver drops a watcher that does not keep
 * up; clients watch again). Holding a watch's bytes in `fetch` instead
 * would hold them in its HTTP/2 connection's flow-control window, which
 * the connection's other watches share.
 */
async function relayAnswer(
  answer: Response,
  res: ServerResponse,
  args: {
    target: Target & { watch?: boolean };
    exchange: Exchange;
    aborter: AbortController;
  },
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
  const watch = args.target.watch === true;
  const stream = watch || args.target.dedicated === true; // or a followed log
  if (stream) res.flushHeaders(); // its reader must see the head at once
  const out = coalescer(res, {
    holdLast: headers["content-length"] !== undefined,
    // a stream's every chunk goes out at once
    flushBytes: stream ? 1 : undefined,
  });
  const capture = args.target.captureResponseBytes ?? 0;
  const copy = capture > 0 ? boundedCopy(capture) : undefined;
  try {
    const chunks = stream ? streamChunks(answer.body) : bodyChunks(answer.body);
    for await (const chunk of chunks) {
      outcome.bytesOut += chunk.length;
      copy?.add(chunk);
      const sent = out.push(chunk);
      if (res.destroyed) break;
      if (watch) {
        if (fellBehind(res)) return dropSlowWatcher(res, args);
      } else if (!sent) await drained(res);
    }
    res.end(out.finish());
    if (copy) {
      const { bytes, cut } = copy.result();
      outcome.responseBody = bytes;
      if (cut) outcome.responseBodyCut = true;
    }
    settle();
  } catch (error) {
    out.finish();
    res.destroy();
    settle(`upstream response: ${(error as Error).message}`);
  }
}

function dropSlowWatcher(
  res: ServerResponse,
  args: { exchange: Exchange; aborter: AbortController },
): void {
  args.aborter.abort();
  res.destroy();
  args.exchange.settle(
    `the app fell more than ${STREAM_MAX_BEHIND_BYTES >> 20} MiB behind on ` +
      "this stream; it was closed (kube-apiserver drops an unresponsive " +
      "watcher the same way; clients watch again)",
  );
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
