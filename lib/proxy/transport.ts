/**
 * Moving one call's bytes between an app and an upstream API server.
 *
 * Streams both ways without holding whole bodies (watches last hours, LISTs
 * reach hundreds of MB). Headers are filtered by `headers.ts`; protocol
 * upgrades go through `upgrade.ts`, large bodiless answers through
 * `fetch_forward.ts`.
 *
 * Knows nothing of routing: the caller says where to send the call, and is
 * handed an `UpstreamFailure` (nothing written to the app) when no answer
 * came, to try another cluster or to answer through `failure.ts`.
 *
 * @module
 */

import { request } from "node:https";
import type {
  ClientRequest,
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from "node:http";
import type { Readable, Writable } from "node:stream";
import { lastChunkHolder, requestOptionsFor } from "../clusters/connection.ts";
import {
  boundedCopy,
  boundHead,
  type Exchange,
  guardSocket,
  HEAD_TIMEOUT_MS,
  type Outcome,
  recordFailure,
  settler,
  type Target,
} from "./exchange.ts";
import { auditIdOf, downstreamHeaders, targetHeaders } from "./headers.ts";

export type { Outcome, Target } from "./exchange.ts";

/**
 * How far an app may fall behind on an answer (a watch, or any answer on
 * the `node:https` path) before MCA closes it. Deno's `node:https` client
 * cannot push back on the API server (ADR 0007), so without a bound one app
 * that stops reading a busy watch, or reads a huge object slowly, would
 * grow the sidecar until the kubelet kills it, and every call of the Pod
 * with it. An object kube-apiserver serves from etcd (~1.5 MiB at most)
 * never comes near it.
 */
export const STREAM_MAX_BEHIND_BYTES = 16 * 1024 * 1024;

/**
 * Whether the app is so far behind on a stream MCA writes (a merged or
 * rewritten watch) that the stream must be closed; see
 * {@linkcode STREAM_MAX_BEHIND_BYTES}.
 */
export function fellBehind(sink: { readonly writableLength: number }): boolean {
  return sink.writableLength > STREAM_MAX_BEHIND_BYTES;
}

/**
 * Forwards one plain HTTP call and streams the answer back.
 *
 * Resolves when the exchange is over (finished, failed or abandoned by the
 * client); never rejects.
 */
export function forwardHttp(
  req: IncomingMessage,
  res: ServerResponse,
  target: Target,
): Promise<Outcome> {
  const call: Attempt = {
    req,
    res,
    target,
    exchange: settler(),
    headers: withKnownBody(targetHeaders(req, target), target.body),
  };
  send(call, true);
  res.on("close", () => {
    if (!res.writableFinished) {
      call.upReq?.destroy();
      call.exchange.settle("client closed the connection");
    }
  });
  return call.exchange.promise;
}

/** One call across its upstream attempts (a stale pooled socket's retry). */
interface Attempt {
  req: IncomingMessage;
  res: ServerResponse;
  target: Target;
  exchange: Exchange;
  headers: OutgoingHttpHeaders;
  upReq?: ClientRequest;
}

/** Sends the call upstream once; on a stale pooled socket, once more. */
function send(call: Attempt, first: boolean): void {
  const { req, res, target, exchange } = call;
  const upReq = request(requestOptionsFor(target.url, target.auth, {
    method: req.method ?? "GET",
    target: req.url ?? "/",
    headers: call.headers,
    dedicated: target.dedicated,
  }));
  call.upReq = upReq;
  const socket = guardSocket(upReq, {
    connectTimeoutMs: target.connectTimeoutMs,
  });
  const head = boundHead(upReq, target);
  upReq.on("response", (upRes) => {
    socket.answered();
    relayResponse(upRes, res, { req, target, exchange });
  });
  upReq.on("error", (error) => {
    if (first && socket.reused() && !head.timedOut() && replayable(call)) {
      return send(call, false);
    }
    recordFailure(exchange, error, {
      target,
      timedOutMs: head.timedOut()
        ? target.headTimeoutMs ?? HEAD_TIMEOUT_MS
        : undefined,
      answerable: !res.headersSent && !res.destroyed,
    });
    if (exchange.outcome.failure === undefined) res.destroy();
    exchange.settle(error.message);
  });
  if (target.body !== undefined) {
    exchange.outcome.bytesIn = target.body.length;
    upReq.end(target.body);
  } else if (first) {
    streamBody(req, upReq, {
      outcome: exchange.outcome,
      capture: target.captureBodyBytes ?? 0,
    });
  } else upReq.end(); // a retry: the app's (empty) body has been read
}

/** Methods a retry cannot repeat the effect of (RFC 9110 9.2.1, 9.2.2). */
const REPLAYABLE = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Whether an attempt that failed on a pooled keep-alive socket (which the
 * API server, or a load balancer before it, may have closed as the request
 * went out) may be sent again on a new connection: no answer came, and it
 * is a read whose body is known to be empty or held whole. Go's `net/http`
 * transport retries the same calls, so client-go never sees these failures
 * without MCA either.
 */
function replayable(call: Attempt): boolean {
  const { req, res, target, exchange } = call;
  if (exchange.outcome.status !== 0) return false;
  if (res.headersSent || res.destroyed) return false;
  if (!REPLAYABLE.has(req.method ?? "GET")) return false;
  return target.body !== undefined ||
    (req.readableEnded && exchange.outcome.bytesIn === 0);
}

/** A body the caller has read (and maybe changed) sets its own length. */
function withKnownBody(
  headers: OutgoingHttpHeaders,
  body: Uint8Array | undefined,
): OutgoingHttpHeaders {
  if (body === undefined) return headers;
  delete headers["transfer-encoding"];
  if (body.length > 0 || headers["content-length"] !== undefined) {
    headers["content-length"] = String(body.length);
  }
  return headers;
}

/** Streams the upstream's answer to the app, with back-pressure. */
function relayResponse(
  upRes: IncomingMessage,
  res: ServerResponse,
  args: { req: IncomingMessage; target: Target; exchange: Exchange },
): void {
  const { outcome, settle } = args.exchange;
  outcome.status = upRes.statusCode ?? 502;
  args.target.observation?.response({
    status: outcome.status,
    auditId: auditIdOf(upRes.headers),
  });
  res.writeHead(outcome.status, upRes.statusMessage, downstreamHeaders(upRes));
  const sized = upRes.headers["content-length"] !== undefined;
  if (!sized && hasBody(args.req.method, outcome.status)) {
    res.flushHeaders(); // a watch's client must see the headers at once
  }
  // A sized body's last chunk goes to end(); a streamed one (a watch) is
  // written at once, every chunk.
  const capture = args.target.captureResponseBytes ?? 0;
  const copy = capture > 0 ? boundedCopy(capture) : undefined;
  pipeHeld(upRes, res, {
    hold: sized,
    counted: (n) => outcome.bytesOut += n,
    // Every answer here, not only watches: a huge object by name (an
    // aggregated API's) read slowly would otherwise sit in MCA whole.
    maxBehindBytes: STREAM_MAX_BEHIND_BYTES,
    overflow: () => {
      upRes.destroy();
      res.destroy();
      settle(
        `the app fell more than ${STREAM_MAX_BEHIND_BYTES >> 20} MiB behind ` +
          (args.target.dedicated
            ? "on this stream; it was closed (kube-apiserver drops an " +
              "unresponsive watcher the same way; clients watch again)"
            : "on this answer; it was cut rather than held in memory"),
      );
    },
    ended: () => {
      if (copy) {
        const { bytes, cut } = copy.result();
        outcome.responseBody = bytes;
        if (cut) outcome.responseBodyCut = true;
      }
      settle();
    },
  });
  if (copy) upRes.on("data", (chunk: Uint8Array) => copy.add(chunk));
  upRes.on("error", (error) => {
    res.destroy();
    settle(`upstream response: ${error.message}`);
  });
}

/**
 * Streams an app's request body upstream, always handing the last chunk to
 * `end()` (see `lastChunkHolder`): a pooled socket whose request never
 * finished stalls the next call it carries.
 */
function streamBody(
  req: IncomingMessage,
  upReq: ClientRequest,
  args: { outcome: Outcome; capture: number },
): void {
  const { outcome, capture } = args;
  if (capture > 0) {
    const copy = boundedCopy(capture);
    req.on("data", (chunk: Uint8Array) => copy.add(chunk));
    req.on("end", () => {
      const { bytes, cut } = copy.result();
      outcome.requestBody = bytes;
      if (cut) outcome.requestBodyCut = true;
    });
  }
  pipeHeld(req, upReq, {
    hold: true,
    counted: (n) => outcome.bytesIn += n,
  });
}

/**
 * Pipes `source` into `sink` with back-pressure, counting bytes; with `hold`
 * the last chunk goes to `end()` (see `lastChunkHolder`).
 */
function pipeHeld(
  source: Readable,
  sink: Writable,
  options: {
    hold: boolean;
    counted(bytes: number): void;
    ended?(): void;
    /** Stream mode: never pause; past this many bytes unsent, overflow. */
    maxBehindBytes?: number;
    overflow?(): void;
  },
): void {
  const chunks = lastChunkHolder(options.hold);
  const limit = options.maxBehindBytes;
  source.on("data", (chunk: Uint8Array) => {
    options.counted(chunk.length);
    const out = chunks.next(chunk);
    if (out === undefined || sink.write(out)) return;
    if (limit === undefined) {
      source.pause();
      sink.once("drain", () => source.resume());
    } else if (sink.writableLength > limit) {
      // Pausing would not help: Deno's client reads on into memory anyway
      // (ADR 0007). What waits for the app is counted here instead.
      options.overflow?.();
    }
  });
  source.on("end", () => {
    sink.end(chunks.last());
    options.ended?.();
  });
}

/**
 * Whether a response carries a body (RFC 9110 6.4.1). Flushing the head of
 * one that cannot (304, 204, HEAD) made Deno's server leave that response
 * unfinished, and the next response on the connection never went out.
 */
function hasBody(method: string | undefined, status: number): boolean {
  return method !== "HEAD" && status >= 200 && status !== 204 &&
    status !== 304;
}
