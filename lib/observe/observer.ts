/**
 * The observe step of the proxy pipeline, as lifecycle events.
 *
 * The pipeline reports every call to one {@linkcode Observer}: `start` when
 * the call is accepted and parsed, `decided` once routing and policy have
 * chosen where it goes, one `upstream` per request sent to an API server
 * (a fan-out sends one per cluster), and `end` when the app's answer is over.
 * Log lines, metrics, traces and audit events are all consumers of these
 * events; none of them lives in the transport or the router.
 *
 * Observers must be cheap and must never throw into the pipeline: a slow or
 * broken consumer (an audit webhook that is down) buffers or drops, it never
 * delays a call. Nothing here carries a header value or a credential: the
 * only request headers an observer sees are the W3C trace context ones.
 *
 * @example Counting calls
 * ```ts
 * import type { Observer } from "./observer.ts";
 * let calls = 0;
 * const counting: Observer = {
 *   start: () => ({ end: () => void calls++ }),
 * };
 * ```
 *
 * @module
 */

import type { RequestInfo } from "../kube/request_info.ts";

/** Who is calling: read from the real service-account token's claims. */
export interface WorkloadIdentity {
  /** `system:serviceaccount:<namespace>:<name>`. */
  username: string;
  namespace: string;
  serviceAccount: string;
  podName?: string;
  podUid?: string;
}

/** A call, as accepted and parsed. */
export interface CallStart {
  /** Per-process sequence number; unique while the process lives. */
  id: number;
  info: RequestInfo;
  method: string;
  /** `performance.now()` at accept. */
  startedAt: number;
  /** Wall-clock time at accept. */
  receivedAt: Date;
  userAgent?: string;
  /** exec / attach / port-forward (and any other HTTP upgrade). */
  upgrade: boolean;
  /** The request's `Content-Type` (tells apply-patch from other patches). */
  contentType?: string;
  /** The app's W3C trace context, when it sent one. */
  traceparent?: string;
  tracestate?: string;
  /** The workload identity, when the real token could be read. */
  identity?: WorkloadIdentity;
  /** The raw request-target as the app sent it (path and query). */
  target?: string;
  /** The app's address on MCA's listener (loopback inside a Pod). */
  remoteAddr?: string;
}

/** What the policy step concluded. */
export interface PolicyVerdict {
  allowed: boolean;
  /** `enforce` refuses denied calls; `audit` only records them. */
  mode: "enforce" | "audit";
  /** Name of the deciding rule; absent when the default decided. */
  rule?: string;
  /** What decided, as a bounded word for metrics and the log. */
  basis: "rule" | "isolation" | "default" | "discovery";
  /** Why, for logs, metrics and audit (never sent to the app). */
  reason: string;
}

/** Where the pipeline decided to send the call. */
export interface CallDecision {
  /** `one`: a single cluster; `fanout`: a merged LIST/WATCH; `search`: by name. */
  plan: "one" | "fanout" | "search" | "refused";
  /** Clusters that will be asked, in order. */
  clusters: string[];
  /** Clusters of the target set left out (down, or denied by policy). */
  missing: string[];
  /** Routing rule that matched; absent for the default route. */
  rule?: string;
  /** Policy verdicts by cluster (absent without a policy). */
  policy?: Record<string, PolicyVerdict>;
}

/** One request about to be sent to one API server. */
export interface UpstreamStart {
  cluster: string;
  method: string;
  /** The request target sent upstream (path and query, after rewrites). */
  target: string;
  /** The original request (for the body an audit level may want). */
  info: RequestInfo;
}

/** The API server's response head. */
export interface UpstreamResponse {
  status: number;
  /** The upstream's `Audit-Id` header, for joining with its audit log. */
  auditId?: string;
}

/** Tracks one upstream request of a call. */
export interface UpstreamObservation {
  /**
   * Headers to add to the upstream request (e.g. `traceparent`). Only
   * headers an observer owns; the pipeline never lets these override
   * credentials.
   */
  headers?: Record<string, string>;
  /** The response head arrived. */
  response(answer: UpstreamResponse): void;
  /** No head came: connect, TLS or timeout failure; `reason` is a short code. */
  failed(reason: string, detail?: string): void;
}

/** How one cluster of the call fared. */
export interface ClusterOutcome {
  cluster: string;
  status?: number;
  /** Short reason when it failed (`unreachable`, `timeout`, `tls`...). */
  error?: string;
}

/** The call is over. */
export interface CallEnd {
  /** Status the app got (0 when the app went away before any answer). */
  status: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  /** Where it went, as one label (`east`, `local+east`, `none`). */
  cluster: string;
  outcomes: ClusterOutcome[];
  /** Short description of what went wrong, for the log line. */
  error?: string;
  /** The first upstream's `Audit-Id`, when one answered. */
  auditId?: string;
  /** The call's trace id (from the tracing consumer), for the log line. */
  traceId?: string;
  /**
   * The request body as sent upstream, when a consumer asked for it
   * (`requestBodyBytes`) or the pipeline read it anyway.
   */
  requestBody?: Uint8Array;
  /** The body was longer than `requestBodyBytes`: `requestBody` is its start. */
  requestBodyCut?: boolean;
  /** The answer's body start, when asked for (`responseBodyBytes`). */
  responseBody?: Uint8Array;
  /** The answer was longer than `responseBodyBytes`. */
  responseBodyCut?: boolean;
  /** Names held by two clusters of a spread set that this answer met. */
  collisions?: number;
}

/** The observer of one call. */
export interface CallObservation {
  /**
   * How many bytes of the request body this consumer wants in
   * `CallEnd.requestBody` (audit at `Request` level and above). The body is
   * streamed upstream as it comes; only this much is kept beside it.
   */
  requestBodyBytes?: number;
  /** Likewise for the answer's body (audit at `RequestResponse`). */
  responseBodyBytes?: number;
  decided?(decision: CallDecision): void;
  upstream?(start: UpstreamStart): UpstreamObservation | undefined;
  end(end: CallEnd): void;
  /** The trace id of the call's span, for the log line. */
  traceId?(): string | undefined;
}

/** Consumers of call events: log, metrics, traces, audit. */
export interface Observer {
  start(call: CallStart): CallObservation;
}

/**
 * One observer that forwards every event to each of `observers` in order.
 * A consumer that throws is isolated: the others still see the event.
 */
export function combineObservers(observers: readonly Observer[]): Observer {
  if (observers.length === 1) return observers[0];
  return {
    start(call) {
      // loops, not map/filter with closures: this runs for every call
      const live: CallObservation[] = [];
      for (const o of observers) {
        const c = safely(o.start, o, call);
        if (c !== undefined) live.push(c);
      }
      return combineCall(live);
    },
  };
}

function combineCall(calls: CallObservation[]): CallObservation {
  let requestBodyBytes = 0;
  let responseBodyBytes = 0;
  for (const c of calls) {
    requestBodyBytes = Math.max(requestBodyBytes, c.requestBodyBytes ?? 0);
    responseBodyBytes = Math.max(responseBodyBytes, c.responseBodyBytes ?? 0);
  }
  return {
    requestBodyBytes,
    responseBodyBytes,
    decided(decision) {
      for (const c of calls) if (c.decided) safely(c.decided, c, decision);
    },
    upstream(start) {
      const subs: UpstreamObservation[] = [];
      let headers: Record<string, string> | undefined;
      for (const c of calls) {
        if (!c.upstream) continue;
        const s = safely(c.upstream, c, start);
        if (s === undefined) continue;
        subs.push(s);
        // one observer's headers are used as they are, not copied
        if (s.headers) {
          headers = headers ? { ...headers, ...s.headers } : s.headers;
        }
      }
      if (subs.length === 0) return undefined;
      return {
        headers, // undefined when none: the request's headers are then not copied
        response(answer) {
          for (const s of subs) safely(s.response, s, answer);
        },
        failed(reason, detail) {
          for (const s of subs) {
            try {
              s.failed(reason, detail);
            } catch {
              // isolated, as every other event
            }
          }
        },
      };
    },
    end(end) {
      for (const c of calls) safely(c.end, c, end);
    },
    traceId() {
      for (const c of calls) {
        const id = c.traceId ? safely(c.traceId, c, undefined) : undefined;
        if (id) return id;
      }
      return undefined;
    },
  };
}

/** `f.call(self, arg)`, or undefined if it throws (no closure per call). */
function safely<S, A, R>(
  f: (this: S, arg: A) => R,
  self: S,
  arg: A,
): R | undefined {
  try {
    return f.call(self, arg);
  } catch {
    return undefined;
  }
}

/**
 * Adds an upstream observation's headers to the app's, in place: both callers
 * own a fresh copy of the request's headers already. An observer that
 * writes `traceparent` owns the whole W3C trace context, so the app's
 * `tracestate` goes only where that observer passes it on (ADR 0019).
 */
export function withObserverHeaders<T extends Record<string, unknown>>(
  headers: T,
  added: Record<string, string> | undefined,
): T {
  if (!added) return headers;
  const out: Record<string, unknown> = headers;
  for (const name in added) {
    if (name.toLowerCase() === "traceparent") delete out["tracestate"];
  }
  for (const name in added) out[name.toLowerCase()] = added[name];
  return headers;
}
