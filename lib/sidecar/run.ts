/**
 * The default mode of `mca`: everything the sidecar does from start to stop.
 *
 * Order matters to the apps: the kubelet starts them once the startup probe
 * passes, and the probe needs both the app-facing files and a serving proxy.
 * The files are written last, after the listener is up, so an app that sees
 * `ca.crt` can connect at once.
 *
 * @module
 */

import { prepareCertificates } from "./certs.ts";
import {
  batchedStdoutSink,
  formatEvent,
  type LogSink,
} from "../observe/log.ts";
import { type Proxy, startProxy } from "../pipeline/proxy.ts";
import type { Observer, WorkloadIdentity } from "../observe/observer.ts";
import { tracingFromEnv } from "../observe/tracing.ts";
import type { PolicyCheck } from "../multicluster/policy_step.ts";
import { type Audit, type AuditOptions, openAudit } from "../audit/setup.ts";
import { openPolicy, workloadIdentity } from "./governance.ts";
import { writeAppServiceAccount } from "./service_account.ts";
import { discoverUpstream } from "../clusters/upstream.ts";
import { RoutingSource } from "../routing/source.ts";
import type { MetricsServer } from "../observe/metrics_server.ts";
import {
  type MetricsEndpointOptions,
  serveSidecarMetrics,
  sidecarMetrics,
} from "./metrics_endpoint.ts";

/** Every path and address the sidecar uses; flags fill these in. */
export interface SidecarOptions {
  /** The real service-account directory (read-only for `mca`). */
  saDir: string;
  /** The directory the apps see as their service account. */
  mcaSaDir: string;
  /** Where the CA key lives (only `mca` mounts it). */
  stateDir: string;
  /** Listen addresses; `::1` is skipped where IPv6 loopback is missing. */
  hosts: string[];
  port: number;
  kubeconfig?: string;
  context?: string;
  connectTimeoutMs?: number;
  /** Bound on an answer's head for calls that are not streams (tests). */
  headTimeoutMs?: number;
  /** Phase 2: the routing YAML file (a mounted ConfigMap). */
  routingConfig?: string;
  /** Phase 2: directory of kubeconfig files (a mounted Secret). */
  clustersDir?: string;
  /** Phase 2: how often each cluster's /readyz is probed. */
  healthIntervalMs?: number;
  /** Phase 2: how often the routing files are checked for changes. */
  reloadIntervalMs?: number;
  env?: Record<string, string | undefined>;
  log?: LogSink;
  /** Phase 3: consumers of call events besides the log (metrics, traces, audit). */
  observers?: Observer[];
  /** Phase 3: the call policy in force (tests; `policyFile` in a Pod). */
  policy?: () => PolicyCheck | undefined;
  /** Phase 3: the policy file (`--policy`, a mounted ConfigMap). */
  policyFile?: string;
  /** Phase 3: the workload identity from the real token's claims. */
  identity?: () => WorkloadIdentity | undefined;
  /** Phase 3: the audit log (`--audit-*` flags); off when empty. */
  audit?: AuditOptions;
  /** Phase 3: the `/metrics` endpoint; absent = metrics off. */
  metrics?: MetricsEndpointOptions;
}

/** The sidecar, running. */
export interface Sidecar {
  proxy: Proxy;
  /** The audit log, when configured: its counters feed the metrics. */
  audit?: Audit;
  /** The metrics endpoint, when metrics are on. */
  metrics?: MetricsServer;
  close(): Promise<void>;
}

/** Starts the sidecar; throws with a clear message if it cannot. */
export async function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const batched = options.log ? undefined : batchedStdoutSink();
  const log = options.log ?? batched!.log;
  const started = performance.now();
  const upstream = await discoverUpstream({
    saDir: options.saDir,
    kubeconfig: options.kubeconfig,
    context: options.context,
    env: options.env,
  });
  let routing: RoutingSource | undefined;
  let audit: Audit | undefined;
  let policy: ReturnType<typeof openPolicy> | undefined;
  let metricsServer: MetricsServer | undefined;
  const metricsOptions = options.metrics ?? {};
  const metrics = sidecarMetrics(
    metricsOptions,
    () => routing?.current.registry,
  );
  const tracing = tracingFromEnv(
    options.env ?? Deno.env.toObject(),
    (message) => log(formatEvent("warn", "tracing", { message })),
  );
  try {
    // A bad audit policy stops the start, before anything is served.
    audit = await openAudit(options.audit ?? {}, { log });
    await upstream.auth(); // fail now, not at the first app call
    routing = await RoutingSource.open(upstream, {
      configFile: options.routingConfig,
      clustersDir: options.clustersDir,
      healthIntervalMs: options.healthIntervalMs,
      pollIntervalMs: options.reloadIntervalMs,
      log,
      onReload: metrics?.reloaded,
    });
    policy = openPolicy(options.policyFile, log);
    const certs = await prepareCertificates(options.stateDir);
    const proxy = await startProxy({
      hosts: options.hosts.filter((h) => h !== "::1"),
      optionalHosts: options.hosts.filter((h) => h === "::1"),
      port: options.port,
      certPem: certs.server.certPem,
      keyPem: certs.server.keyPem,
      routing,
      log,
      connectTimeoutMs: options.connectTimeoutMs,
      headTimeoutMs: options.headTimeoutMs,
      observers: [
        ...(options.observers ?? []),
        ...(metrics ? [metrics.observer] : []),
        ...(tracing ? [tracing.observer] : []),
        ...(audit ? [audit.observer] : []),
      ],
      policy: options.policy ?? policy.current,
      identity: options.identity ?? workloadIdentity(options.saDir),
    });
    try {
      metricsServer = await serveSidecarMetrics(metrics, metricsOptions);
      await writeAppServiceAccount(options.mcaSaDir, {
        caPem: certs.ca.certPem,
        namespace: upstream.namespace,
      });
    } catch (error) {
      await metricsServer?.close();
      await proxy.close();
      throw error;
    }
    routing.start();
    policy.source?.start(options.reloadIntervalMs);
    const source = routing;
    const readyLine = formatEvent("info", "ready", {
      listen: proxy.hosts.map((h) =>
        h.includes(":") ? `[${h}]:${proxy.port}` : `${h}:${proxy.port}`
      ),
      upstream: upstream.source,
      caReused: certs.caReused,
      clusters: [...routing.current.registry.names()].sort(),
      rules: routing.current.config.rules.length,
      audit: audit !== undefined,
      metrics: metricsServer
        ? `${metricsServer.hostname}:${metricsServer.port}`
        : "off",
      tracing: tracing ? "on" : "off",
      startupMs: Math.round(performance.now() - started),
    });
    log(readyLine);
    batched?.flush(); // "ready" is what operators and tests wait for
    const auditLog = audit;
    const served = metricsServer;
    return {
      proxy,
      audit: auditLog,
      metrics: served,
      async close() {
        source.close();
        policy?.source?.close();
        await served?.close();
        await proxy.close();
        await tracing?.close();
        await auditLog?.close(); // after the last call's events
        upstream.close();
        log(formatEvent("info", "stopped"));
        batched?.flush();
      },
    };
  } catch (error) {
    routing?.close();
    await tracing?.close();
    await audit?.close();
    upstream.close();
    batched?.flush();
    throw error;
  }
}
