/**
 * What mca measures: the name, help text, labels and buckets of every call
 * instrument, in the order `/metrics` lists them.
 *
 * One table, so that a dashboard author (or a reviewer of a new metric) reads
 * every name mca exports in one place.
 *
 * @module
 */

import {
  Counter,
  Gauge,
  type OpenMetricsContentType,
  type Registry,
} from "prom-client";
import { HistogramTally, Tally } from "./tally.ts";

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

/** The two registries (text and OpenMetrics) every instrument is on. */
export type Registers = [Registry, Registry<OpenMetricsContentType>];

const REQUEST_LABELS = [
  "cluster",
  "verb",
  "group",
  "version",
  "resource",
  "subresource",
  "scope",
] as const;

/** Creates every call instrument on both registries. */
// long: one flat table of twelve instruments in exposition order; split
// into parts, the order /metrics lists them in is no longer visible.
export function instruments(registers: Registers) {
  const labelNames = [...REQUEST_LABELS];
  return {
    requests: new Tally({
      name: "mca_requests_total",
      help: "Calls by cluster, verb, API resource, scope and HTTP code.",
      labelNames: [...labelNames, "code"],
      registers,
    }),
    duration: new HistogramTally({
      name: "mca_request_duration_seconds",
      help: "Call latency as the app saw it (WATCH and CONNECT excluded).",
      labelNames,
      buckets: [...REQUEST_DURATION_BUCKETS],
      registers,
    }),
    upstreamDuration: new HistogramTally({
      name: "mca_upstream_request_duration_seconds",
      help:
        "Time from sending a request to an API server to its response head.",
      labelNames: ["cluster"],
      buckets: [...REQUEST_DURATION_BUCKETS],
      registers,
    }),
    inFlight: inFlightGauge(registers),
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
    policyDecisions: new Tally({
      name: "mca_policy_decisions_total",
      help:
        "Call policy verdicts per cluster: decision (allow, deny), mode (enforce refuses, audit only records), the deciding rule ('' when none) and basis (rule, isolation, default, discovery).",
      labelNames: ["cluster", "decision", "mode", "rule", "basis"],
      registers,
    }),
    collisions: new Counter({
      name: "mca_name_collisions_total",
      help:
        "Objects of a spread set whose namespace and name another cluster of the set also holds, met by a by-name read or a merged LIST.",
      labelNames: ["resource"],
      registers,
    }),
  };
}

/** The instruments of one metric set. */
export type Instruments = ReturnType<typeof instruments>;

/**
 * `mca_requests_in_flight` as a plain number read at scrape time: a
 * prom-client `inc`/`dec` hashes an (empty) label set twice per call.
 */
function inFlightGauge(registers: Registers) {
  let value = 0;
  new Gauge({
    name: "mca_requests_in_flight",
    help: "Calls accepted and not over yet.",
    registers,
    collect() {
      this.set(value);
    },
  });
  return {
    inc: () => void value++,
    dec: () => void value--,
  };
}
