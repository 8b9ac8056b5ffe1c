/**
 * What the app-facing upstream clients (the streaming transport, the
 * `fetch` path, upgrades) share about one exchange: where it goes, how it
 * ended, and the deadlines that keep a dead upstream from holding a call.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { ClientRequest } from "node:http";
import type { Socket } from "node:net";
import type { UpstreamAuth } from "../clusters/upstream.ts";
import type { UpstreamObservation } from "../observe/observer.ts";
import type { UpstreamFailure } from "./failure.ts";
import { deadline } from "./deadlines.ts";

/** Where to send one call, with which credentials. */
export interface Target {
  url: URL;
  auth: UpstreamAuth;
  /** Bound on TCP connect + TLS handshake with the upstream. */
  connectTimeoutMs: number;
  /**
   * Use a connection of its own instead of the keep-alive pool: for streams
   * that may last hours (watches, followed logs), which would otherwise pin
   * pooled sockets.
   */
  dedicated?: boolean;
  /** The request body, when the caller has already read (and maybe changed) it. */
  body?: Uint8Array;
  /** Told the response head or the failure; may add headers (traces). */
  observation?: UpstreamObservation;
  /**
   * Bound on waiting for the response head of a call that is not a stream
   * (`dedicated` calls are unbounded). Past it the exchange fails with a
   * `timeout`.
   */
  headTimeoutMs?: number;
  /** Keep up to this many bytes of a streamed request body in the outcome. */
  captureBodyBytes?: number;
  /** Keep up to this many bytes of the answer's body in the outcome. */
  captureResponseBytes?: number;
}

/** How a call ended, for the observers. */
export interface Outcome {
  status: number;
  bytesIn: number;
  bytesOut: number;
  error?: string;
  /** The upstream could not be reached at all (no answer came back). */
  unreachable?: boolean;
  /** The start of the request body, when the target asked to capture it. */
  requestBody?: Uint8Array;
  /** The body was longer than what was captured. */
  requestBodyCut?: boolean;
  /** The start of the answer's body, when the target asked to capture it. */
  responseBody?: Uint8Array;
  /** The answer was longer than what was captured. */
  responseBodyCut?: boolean;
  /**
   * Names held by more than one cluster of a spread set in this answer
   * (a by-name read, a merged LIST): counted by the metrics.
   */
  collisions?: number;
  /**
   * No answer came and nothing was written to the app: the caller tries
   * another cluster or answers through `respondFailure`.
   */
  failure?: UpstreamFailure;
}

/**
 * kube-apiserver ends a non-long-running call after its `--request-timeout`
 * (60 s by default) with a 504 of its own; a head that has not come 10 s
 * after that will not come.
 */
export const HEAD_TIMEOUT_MS = 70_000;

/** Aborts a non-streaming call whose head does not come in time. */
export function boundHead(
  upReq: ClientRequest,
  target: Target,
): { timedOut(): boolean } {
  let fired = false;
  if (target.dedicated) return { timedOut: () => false };
  const ms = target.headTimeoutMs ?? HEAD_TIMEOUT_MS;
  const bound = deadline(ms, () => {
    fired = true;
    upReq.destroy(new Error(`no answer within ${ms} ms`));
  });
  const clear = () => bound.cancel();
  upReq.once("response", clear);
  upReq.once("upgrade", clear);
  upReq.once("close", clear);
  return { timedOut: () => fired };
}

/** Aborts a request whose TCP connect + TLS handshake takes too long. */
export function boundConnect(upReq: ClientRequest, timeoutMs: number): void {
  upReq.on(
    "socket",
    (socket: Socket) => connectBound(upReq, socket, timeoutMs),
  );
}

function connectBound(
  upReq: ClientRequest,
  socket: Socket,
  timeoutMs: number,
): void {
  if (!socket.connecting) return;
  const timer = setTimeout(() => {
    upReq.destroy(new Error(`no TLS connection within ${timeoutMs} ms`));
  }, timeoutMs);
  const clear = () => clearTimeout(timer);
  socket.once("secureConnect", clear);
  socket.once("close", clear);
  upReq.once("response", clear);
}

/** Sockets that have carried a request: the next one on them is a reuse. */
const carried = new WeakSet<Socket>();

/**
 * Fails a request whose connection closes before its answer came, and says
 * whether that connection had carried a request before (a pooled one).
 * Node's client reports an early close as "socket hang up"; Deno 2.9's says
 * nothing when the request had not ended as the socket was handed to it (a
 * streamed body, even an empty one), so the call would wait out its head
 * deadline on a pooled socket the API server had just closed. Deno's
 * `reusedSocket` stays false on such a socket, hence the set. The caller
 * says when the answer's head came (`answered`); a socket that closes
 * first ends the request, and its listener with it. Bounds the connect as
 * {@linkcode boundConnect} does, in the same listener.
 */
export function guardSocket(
  upReq: ClientRequest,
  options: { connectTimeoutMs: number },
): { reused(): boolean; answered(): void } {
  let reused = false;
  let release = () => {};
  upReq.on("socket", (socket: Socket) => {
    connectBound(upReq, socket, options.connectTimeoutMs);
    reused = carried.has(socket);
    carried.add(socket);
    const closed = () => {
      if (!upReq.destroyed) {
        upReq.destroy(
          new Error("the API server closed the connection before answering"),
        );
      }
    };
    socket.once("close", closed);
    release = () => socket.off("close", closed);
  });
  // Called by the transport on the answer's head: one listener less per
  // call than `once("response")` (this runs for every GET).
  return { reused: () => reused, answered: () => release() };
}

/** The outcome of an exchange and the one-shot function that reports it. */
export interface Exchange {
  promise: Promise<Outcome>;
  outcome: Outcome;
  settle(error?: string): void;
}

/**
 * Starts an {@linkcode Exchange}: events from both sockets race to end it;
 * the first wins.
 */
export function settler(): Exchange {
  const { promise, resolve } = Promise.withResolvers<Outcome>();
  const outcome: Outcome = { status: 0, bytesIn: 0, bytesOut: 0 };
  let settled = false;
  function settle(error?: string) {
    if (settled) return;
    settled = true;
    if (error && !outcome.error) outcome.error = error;
    resolve(outcome);
  }
  return { promise, outcome, settle };
}

/**
 * Records that no answer came. While nothing has been sent to the app, the
 * exchange carries a {@linkcode UpstreamFailure} for the caller to act on;
 * after that the app's connection is all that can be dropped (`drop`).
 */
export function recordFailure(
  exchange: Exchange,
  error: Error,
  args: { target: Target; timedOutMs?: number; answerable: boolean },
): void {
  const { outcome } = exchange;
  const timedOut = args.timedOutMs !== undefined;
  if (outcome.status === 0) {
    args.target.observation?.failed(
      timedOut ? "timeout" : "unreachable",
      error.message,
    );
  }
  if (outcome.status === 0 && args.answerable) {
    outcome.failure = {
      kind: timedOut ? "timeout" : "unreachable",
      origin: args.target.url.origin,
      message: error.message,
      afterMs: args.timedOutMs,
    };
    // A timed-out upstream took the call: not unreachable, no failover.
    if (!timedOut) outcome.unreachable = true;
  }
}

/**
 * A copy of the first `limit` bytes of a stream, kept beside it for the
 * observers (audit bodies): the stream itself is never held back.
 */
export function boundedCopy(limit: number): {
  add(chunk: Uint8Array): void;
  /** The bytes kept, and whether the stream was longer. */
  result(): { bytes: Uint8Array; cut: boolean };
} {
  const kept: Uint8Array[] = [];
  let size = 0;
  let cut = false;
  return {
    add(chunk) {
      if (size >= limit) return void (cut = true);
      const part = chunk.subarray(0, limit - size);
      if (part.length < chunk.length) cut = true;
      kept.push(part.slice());
      size += part.length;
    },
    result: () => ({ bytes: Buffer.concat(kept, size), cut }),
  };
}
