/**
 * Prometheus metrics of every call, per cluster, as an {@linkcode Observer}.
 *
 * Names and labels follow kube-apiserver's own (`apiserver_request_total`,
 * `apiserver_request_duration_seconds`, its buckets and verb normalisation)
 * so dashboards and alerts people already know carry over, with `cluster`
 * added. The format is written by `prom-client` on its own `Registry` (never
 * the process-global one). Label values are bounded (see
 * {@link ./metric_labels.ts} and design/decisions/0018-metrics.md).
 *
 * @module
 */

import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  type OpenMetricsContentType,
  Registry,
} from "prom-client";
import type {
  CallDecision,
  CallEnd,
  CallObservation,
  CallStart,
  Observer,
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
import { Tally } from "./tally.ts";

/**
 * Default port of the metrics endpoint. Outside Prometheus' exporter range
 * (9100-9999, fully allocated), Kubernetes' own ports (6443, 2379-2380,
 * 10248-10260), k3s's 6444, MySQL Router's 6446-6450 and the usual app
 * ports (80xx, 3000, 5000, 9090): 6453 sits next to the proxy's 6443.
 */
export const METRICS_PORT = 6453;

/** kube-apiserver's `apiserver_request_duration_seconds` buckets. */
export const REQUEST_DURATION_BUCKETS: readonly number[] = [
  0.005,
  0.025,
  0.05,
  0.1,
  0.2,
  0.4,
  0.6,
  0.8,
  1.0,
  1.25,
  1.5,
  2,
  3,
  4,
  5,
  6,
  8,
  10,
  15,
  20,
  30,
  45,
  60,
];

/**
 * prom-client's default collectors that report real values under Deno
 * 2.9.6. Left out: `nodejs_gc_duration_seconds` (Deno emits no `gc`
 * performance entries, so it stays empty) and the active handles / requests
 * / resources gauges (Deno's `process._getActiveHandles` and friends are
 * stubs that always answer empty).
 */
export const DENO_UNSUPPORTED_DEFAULTS: readonly string[] = [
  "nodejs_gc_duration_seconds",
  "nodejs_active_handles",
  "nodejs_active_handles_total",
  "nodejs_active_requests",
  "nodejs_active_requests_total",
  "nodejs_active_resources",
  "nodejs_active_resources_total",
];

/** Names the routing registry's health, for `mca_cluster_up`. */
export interface HealthView {
  names(): Iterable<string>;
  isHealthy(name: string): boolean;
}

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** The registry in force now (it changes on reloads). */
  health?: () => HealthView;
  /** Process and runtime collectors; on by default. */
  defaultCollectors?: boolean;
}

/** The metric set, its registries and the observer that feeds it. */
export interface Metrics {
  observer: Observer;
  /** Prometheus text exposition 0.0.4. */
  text: Registry;
  /** OpenMetrics 1.0.0. */
  openMetrics: Registry<OpenMetricsContentType>;
  /** A routing configuration reload ended (`loaded` or `rejected`). */
  reloaded(result: "loaded" | "rejected"): void;
}

type Registers = [Registry, Registry<OpenMetricsContentType>];

const REQUEST_LABELS = [
  "cluster",
  "verb",
  "group",
  "version",
  "resource",
  "subresource",
  "scope",
] as const;

function instruments(registers: Registers) {
  const labelNames = [...REQUEST_LABELS];
  return {
    requests: new Tally({
      name: "mca_requests_total",
      help: "Calls by cluster, verb, API resource, scope and HTTP code.",
      labelNames: [...labelNames, "code"],
      registers,
    }),
    duration: new Histogram({
      name: "mca_request_duration_seconds",
      help: "Call latency as the app saw it (WATCH and CONNECT excluded).",
      labelNames,
      buckets: [...REQUEST_DURATION_BUCKETS],
      registers,
    }),
    upstreamDuration: new Histogram({
      name: "mca_upstream_request_duration_seconds",
      help:
        "Time from sending a request to an API server to its response head.",
      labelNames: ["cluster"],
      buckets: [...REQUEST_DURATION_BUCKETS],
      registers,
    }),
    inFlight: new Gauge({
      name: "mca_requests_in_flight",
      help: "Calls accepted and not over yet.",
      registers,
    }),
    longRunning: new Gauge({
      name: "mca_long_running_requests",
      help: "Open watches and upgraded connections (exec, attach...).",
      labelNames: ["cluster", "verb"],
      registers,
    }),
    requestBytes: new Tally({
      name: "mca_request_bytes_total",
      help: "Request body bytes received from apps.",
      labelNames: ["cluster", "verb"],
      registers,
    }),
    responseBytes: new Tally({
      name: "mca_response_bytes_total",
      help: "Response body bytes sent to apps.",
      labelNames: ["cluster", "verb"],
      registers,
    }),
    upstreamErrors: new Counter({
      name: "mca_upstream_errors_total",
      help: "Upstream requests that got no response head, by reason.",
      labelNames: ["cluster", "reason"],
      registers,
    }),
    reloads: new Counter({
      name: "mca_routing_reloads_total",
      help: "Routing configuration reloads by result (loaded, rejected).",
      labelNames: ["result"],
      registers,
    }),
    failovers: new Counter({
      name: "mca_failovers_total",
      help: "Calls retried on the next cluster after one failed.",
      labelNames: ["cluster"],
      registers,
    }),
    leftOut: new Counter({
      name: "mca_merged_clusters_left_out_total",
      help: "Clusters left out of a merged call (down, denied or failed).",
      labelNames: ["cluster"],
      registers,
    }),
  };
}

type Instruments = ReturnType<typeof instruments>;

/** Bounds on the label values an app can influence. */
class Bounds {
  /** Names from the routing config (one per cluster or merged rule). */
  cluster = new BoundedValues({ cap: 128, pattern: null });
  group = new BoundedValues({ known: BUILTIN_GROUPS, cap: 64 });
  resource = new BoundedValues({ known: BUILTIN_RESOURCES, cap: 200 });
  subresource = new BoundedValues({ known: BUILTIN_SUBRESOURCES, cap: 16 });
  reason = new BoundedValues({ cap: 16 });
}

/** Builds the metric set; the caller serves its registries. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const text = new Registry();
  const openMetrics = new Registry<OpenMetricsContentType>();
  openMetrics.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  const registers: Registers = [text, openMetrics];
  const m = instruments(registers);
  const health = options.health;
  if (health) clusterUpGauge(registers, health);
  if (options.defaultCollectors ?? true) {
    for (const register of registers) {
      collectDefaultMetrics({ register });
      for (const name of DENO_UNSUPPORTED_DEFAULTS) {
        register.removeSingleMetric(name);
      }
    }
  }
  const bounds = new Bounds();
  return {
    observer: { start: (call) => observeCall(call, m, bounds) },
    text,
    openMetrics,
    reloaded: (result) => m.reloads.labels(result).inc(),
  };
}

function clusterUpGauge(registers: Registers, health: () => HealthView) {
  new Gauge({
    name: "mca_cluster_up",
    help: "1 when the cluster's last /readyz probe (or call) succeeded.",
    labelNames: ["cluster"],
    registers,
    collect() {
      this.reset();
      const view = health();
      for (const name of view.names()) {
        this.labels(name).set(view.isHealthy(name) ? 1 : 0);
      }
    },
  });
}

/** The state of one call between its events. */
interface CallState {
  call: CallStart;
  decision?: CallDecision;
  upstreams: number;
  longRunning?: { cluster: string; verb: string };
}

function observeCall(
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
      m.upstreamDuration.labels(cluster).observe(
        (performance.now() - sent) / 1000,
      );
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
  const labels = {
    cluster: bounds.cluster.value(callCluster(state, end), true),
    verb,
    group: bounds.group.value(info.apiGroup, ok),
    version: cleanVersion(info.apiVersion),
    resource: bounds.resource.value(info.resource, ok),
    subresource: bounds.subresource.value(info.subresource, ok),
    scope: cleanScope(info),
  };
  m.requests.add([
    labels.cluster,
    verb,
    labels.group,
    labels.version,
    labels.resource,
    labels.subresource,
    labels.scope,
    cleanCode(end.status),
  ]);
  if (verb !== "WATCH" && verb !== "CONNECT") {
    m.duration.labels(labels).observe(end.durationMs / 1000);
  }
  const byVerb = [labels.cluster, verb];
  if (end.bytesIn > 0) m.requestBytes.add(byVerb, end.bytesIn);
  if (end.bytesOut > 0) m.responseBytes.add(byVerb, end.bytesOut);
}
