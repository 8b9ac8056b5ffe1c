/**
 * The sidecar's metrics: the metric set fed by the pipeline's observer and
 * the `/metrics` listener, built before the routing source so reloads are
 * counted from the first one.
 *
 * The metric modules (and prom-client, 6.3 MiB of RSS in an idle `mca`,
 * `bench/repro/import_cost.ts`) are imported only when metrics are on.
 *
 * @module
 */

import type { AuditCounts, HealthView, Metrics } from "../observe/metrics.ts";
import type { MetricsServer } from "../observe/metrics_server.ts";
import { METRICS_PORT } from "../inject/names.ts";

/** Where `/metrics` is served; port 0 with `off` means no metrics at all. */
export interface MetricsEndpointOptions {
  /** `--metrics-listen`; `0.0.0.0` by default. */
  hostname?: string;
  /** `--metrics-port`; `undefined` = off (the flag's `0`), 0 in tests = free port. */
  port?: number;
}

const NO_CLUSTERS: HealthView = { names: () => [], isHealthy: () => false };

/** The metric set, or none when metrics are off. */
export async function sidecarMetrics(
  options: MetricsEndpointOptions,
  sources: {
    health: () => HealthView | undefined;
    audit: () => AuditCounts | undefined;
  },
): Promise<Metrics | undefined> {
  if (options.port === undefined) return undefined;
  const { createMetrics } = await import("../observe/metrics.ts");
  return createMetrics({
    health: () => sources.health() ?? NO_CLUSTERS,
    audit: sources.audit,
  });
}

/** Serves `metrics` when on; the error names the flag to change. */
export async function serveSidecarMetrics(
  metrics: Metrics | undefined,
  options: MetricsEndpointOptions,
): Promise<MetricsServer | undefined> {
  if (!metrics || options.port === undefined) return undefined;
  const { startMetricsServer } = await import("../observe/metrics_server.ts");
  return await startMetricsServer(metrics, {
    hostname: options.hostname,
    port: options.port,
  });
}

/**
 * The endpoint from `--metrics-listen` and `--metrics-port` (default
 * {@linkcode METRICS_PORT} on `0.0.0.0`; port `0` turns metrics off).
 * Throws a message naming the flag when a value is wrong.
 */
export function metricsFlags(
  listen: string | undefined,
  port: string | undefined,
): MetricsEndpointOptions {
  const hostname = (listen ?? "0.0.0.0").trim().replace(/^\[|\]$/g, "");
  if (hostname === "") {
    throw new Error("--metrics-listen needs an address, e.g. 0.0.0.0");
  }
  if (port === undefined) return { hostname, port: METRICS_PORT };
  const n = Number(port);
  if (!/^[0-9]+$/.test(port) || n > 65535) {
    throw new Error(
      `--metrics-port must be 0-65535 (0 turns metrics off), got ${
        JSON.stringify(port)
      }`,
    );
  }
  return n === 0 ? {} : { hostname, port: n };
}
