/**
 * How one call's events become metric samples: in-flight and long-running
 * gauges, per-call counters and latency, upstream latency and errors,
 * failovers and clusters left out of merged answers.
 *
 * Every label value an app can influence goes through a bound (see
 * `metric_labels.ts`), so no app can grow the series count without limit.
 *
 * @module
 */

import type {
  CallDecision,
  CallEnd,
  CallObservation,
  CallStart,
  UpstreamObservation,
  UpstreamStart,
} from "./observer.ts";
import {
  BoundedValues,
  BUILTIN_GROUPS,
  BUILTIN_RESOURCES,
  BUILTIN_SUBRESOURCES,
  cleanCode,
  cleanScope,
  cleanVerb,
  cleanVersion,
} from "./metric_labels.ts";
import type { Instruments } from "./instruments.ts";

/** Bounds on the label values an app can influence. */
export class Bounds {
  /** Names from the routing config (one per cluster or merged rule). */
  cluster = new BoundedValues({ cap: 128, pattern: null });
  group = new BoundedValues({ known: BUILTIN_GROUPS, cap: 64 });
  resource = new BoundedValues({ known: BUILTIN_RESOURCES, cap: 200 });
  subresource = new BoundedValues({ known: BUILTIN_SUBRESOURCES, cap: 16 });
  reason = new BoundedValues({ cap: 16 });
  /** Rule names from the policy file: bounded by it, capped in case. */
  policyRule = new BoundedValues({ cap: 64, pattern: null });
}

/** The state of one call between its events. */
interface CallState {
  call: CallStart;
  decision?: CallDecision;
  upstreams: number;
  longRunning?: { cluster: string; verb: string };
}

/** Counts one call in flight; its observation records the later events. */
export function observeCall(
  call: CallStart,
  m: Instruments,
  bounds: Bounds,
): CallObservation {
  m.inFlight.inc();
  const state: CallState = { call, upstreams: 0 };
  return {
    decided(decision) {
      state.decision = decision;
      decidedMetrics(state, m, bounds);
    },
    upstream(start) {
      return upstreamMetrics(state, start, { m, bounds });
    },
    end(end) {
      endMetrics(state, end, { m, bounds });
    },
  };
}

/** The `cluster` label of a whole call: one name, or the merged set. */
function callCluster(state: CallState, end?: CallEnd): string {
  const d = state.decision;
  if (d && (d.plan === "fanout" || d.plan === "search")) {
    return [...d.clusters, ...d.missing].sort().join("+");
  }
  return end?.cluster ?? d?.clusters[0] ?? "none";
}

function contentTypeOf(call: CallStart): string | undefined {
  return (call as CallStart & { contentType?: string }).contentType;
}

function verbOf(call: CallStart): string {
  return cleanVerb(call.method, call.info, contentTypeOf(call));
}

function decidedMetrics(state: CallState, m: Instruments, bounds: Bounds) {
  const d = state.decision!;
  if (d.policy) policyMetrics(d.policy, { m, bounds });
  if (d.plan === "fanout" || d.plan === "search") {
    for (const c of d.missing) {
      m.leftOut.labels(bounds.cluster.value(c, true)).inc();
    }
  }
  const verb = verbOf(state.call);
  if (verb === "WATCH" || state.call.upgrade) {
    const lr = {
      cluster: bounds.cluster.value(callCluster(state), true),
      verb,
    };
    state.longRunning = lr;
    m.longRunning.labels(lr).inc();
  }
}

interface Ctx {
  m: Instruments;
  bounds: Bounds;
}

/** One sample per cluster the policy decided for (a fan-out has several). */
function policyMetrics(
  verdicts: NonNullable<CallDecision["policy"]>,
  { m, bounds }: Ctx,
): void {
  for (const cluster in verdicts) {
    const v = verdicts[cluster];
    m.policyDecisions.add([
      bounds.cluster.value(cluster, true),
      v.allowed ? "allow" : "deny",
      v.mode,
      bounds.policyRule.value(v.rule ?? "", true),
      v.basis,
    ]);
  }
}

function upstreamMetrics(
  state: CallState,
  start: UpstreamStart,
  { m, bounds }: Ctx,
): UpstreamObservation {
  state.upstreams++;
  const cluster = bounds.cluster.value(start.cluster, true);
  if (state.upstreams > 1 && state.decision?.plan === "one") {
    m.failovers.labels(cluster).inc();
  }
  const sent = performance.now();
  let answered = false;
  return {
    response() {
      answered = true;
      m.upstreamDuration.observe([cluster], (performance.now() - sent) / 1000);
    },
    failed(reason) {
      // A stream cut after its head (a watch ending) is not "no head".
      if (answered) return;
      answered = true;
      const r = bounds.reason.value(reason.toLowerCase(), true);
      m.upstreamErrors.labels(cluster, r).inc();
    },
  };
}

function endMetrics(state: CallState, end: CallEnd, { m, bounds }: Ctx) {
  m.inFlight.dec();
  if (state.longRunning) m.longRunning.labels(state.longRunning).dec();
  const d = state.decision;
  if (d && (d.plan === "fanout" || d.plan === "search")) {
    for (const o of end.outcomes) {
      if (o.error !== undefined && !d.missing.includes(o.cluster)) {
        m.leftOut.labels(bounds.cluster.value(o.cluster, true)).inc();
      }
    }
  }
  const { info } = state.call;
  const ok = end.status >= 200 && end.status < 300;
  const verb = verbOf(state.call);
  const cluster = bounds.cluster.value(callCluster(state, end), true);
  const resource = bounds.resource.value(info.resource, ok);
  // in REQUEST_LABELS order; the code is appended for mca_requests_total
  const labels = [
    cluster,
    verb,
    bounds.group.value(info.apiGroup, ok),
    cleanVersion(info.apiVersion),
    resource,
    bounds.subresource.value(info.subresource, ok),
    cleanScope(info),
  ];
  if (verb !== "WATCH" && verb !== "CONNECT") {
    m.duration.observe(labels, end.durationMs / 1000);
  }
  labels.push(cleanCode(end.status));
  m.requests.add(labels);
  if (end.collisions) m.collisions.labels(resource).inc(end.collisions);
  const byVerb = [cluster, verb];
  if (end.bytesIn > 0) m.requestBytes.add(byVerb, end.bytesIn);
  if (end.bytesOut > 0) m.responseBytes.add(byVerb, end.bytesOut);
}
