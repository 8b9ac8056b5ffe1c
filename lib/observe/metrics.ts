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
  type OpenMetricsContentType,
  Registry,
} from "prom-client";
import type { Observer } from "./observer.ts";
import { instruments, type Registers } from "./instruments.ts";
import { Bounds, observeCall } from "./call_metrics.ts";

export { REQUEST_DURATION_BUCKETS } from "./instruments.ts";

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
  /** The audit log's counters, when there is one. */
  audit?: () => AuditCounts | undefined;
}

/** What the audit log counts (`lib/audit/backend.ts`). */
export interface AuditCounts {
  written: number;
  dropped: number;
  errors: number;
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

/** Builds the metric set; the caller serves its registries. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const text = new Registry();
  const openMetrics = new Registry<OpenMetricsContentType>();
  openMetrics.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  const registers: Registers = [text, openMetrics];
  const m = instruments(registers);
  const health = options.health;
  if (health) clusterUpGauge(registers, health);
  if (options.audit) auditCounters(registers, options.audit);
  if (options.defaultCollectors ?? true) defaultCollectors(registers);
  const bounds = new Bounds();
  return {
    observer: { start: (call) => observeCall(call, m, bounds) },
    text,
    openMetrics,
    reloaded: (result) => m.reloads.labels(result).inc(),
  };
}

/**
 * How often the event-loop delay is sampled, in ms. prom-client's default
 * (10 ms) runs a timer 100 times a second, which under Deno 2.9.6 cost an
 * idle `mca` 4–6 ms of CPU per second (0.5 % of a core in every Pod, calls
 * or not); at 250 ms it is within the noise of an idle process, and a 15–60 s
 * scrape interval still gets 60–240 samples per scrape.
 */
export const EVENT_LOOP_SAMPLE_MS = 250;

/**
 * Registers the default collectors once, in the text registry, and shares
 * the same metric objects with the OpenMetrics one: one event-loop monitor
 * and one set of `/proc` readers instead of one per registry.
 */
function defaultCollectors([text, openMetrics]: Registers): void {
  collectDefaultMetrics({
    register: text,
    eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS,
  });
  for (const name of DENO_UNSUPPORTED_DEFAULTS) text.removeSingleMetric(name);
  for (const { name } of text.getMetricsAsArray()) {
    const metric = text.getSingleMetric(name);
    if (metric && !name.startsWith("mca_")) openMetrics.registerMetric(metric);
  }
}

/**
 * The audit log's own counters, read at scrape time: events written and
 * dropped (full buffer, a file that cannot be written, a webhook that stays
 * down), and failed writes or POSTs. No series while audit is off.
 */
function auditCounters(
  registers: Registers,
  read: () => AuditCounts | undefined,
): void {
  new Counter({
    name: "mca_audit_events_total",
    help:
      "Audit events by result: written, or dropped (never blocking a call).",
    labelNames: ["result"],
    registers,
    collect() {
      this.reset();
      const c = read();
      if (!c) return;
      this.inc({ result: "written" }, c.written);
      this.inc({ result: "dropped" }, c.dropped);
    },
  });
  new Counter({
    name: "mca_audit_errors_total",
    help: "Failed audit log writes and webhook POSTs (each retry counts).",
    registers,
    collect() {
      this.reset();
      const c = read();
      if (c) this.inc(c.errors);
    },
  });
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
