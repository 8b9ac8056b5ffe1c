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

import { type Certificates, prepareCertificates } from "./certs.ts";
import {
  type BatchedSink,
  batchedStdoutSink,
  formatEvent,
  type LogSink,
} from "../observe/log.ts";
import { type Proxy, startProxy } from "../pipeline/proxy.ts";
import type { Observer, WorkloadIdentity } from "../observe/observer.ts";
import { type Tracing, tracingFromEnv } from "../observe/tracing.ts";
import type { PolicyCheck } from "../multicluster/policy_step.ts";
import { type Audit, type AuditOptions, openAudit } from "../audit/setup.ts";
import { openPolicy, workloadIdentity } from "./governance.ts";
import { writeAppServiceAccount } from "./service_account.ts";
import { discoverUpstream, type Upstream } from "../clusters/upstream.ts";
import { RoutingSource } from "../routing/source.ts";
import type { MetricsServer } from "../observe/metrics_server.ts";
import type { Metrics } from "../observe/metrics.ts";
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

/**
 * What start-up has opened so far, so that a failing step closes exactly
 * what the steps before it opened.
 */
interface Opened {
  log: LogSink;
  /** The stdout batcher, unless the caller passed its own sink. */
  batched?: BatchedSink;
  upstream: Upstream;
  metrics?: Metrics;
  tracing?: Tracing;
  audit?: Audit;
  routing?: RoutingSource;
}

/** The call policy from `--policy`, as {@linkcode openPolicy} returns it. */
type Policy = ReturnType<typeof openPolicy>;

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
  const opened: Opened = { log, batched, upstream };
  opened.metrics = await sidecarMetrics(options.metrics ?? {}, {
    health: () => opened.routing?.current.registry,
    audit: () => opened.audit?.counters(),
  });
  opened.tracing = tracingFromEnv(
    options.env ?? Deno.env.toObject(),
    (message) => log(formatEvent("warn", "tracing", { message })),
  );
  try {
    const { routing, policy } = await openGovernance(options, opened);
    const certs = await prepareCertificates(options.stateDir);
    const proxy = await startProxy(proxyOptions(options, {
      opened,
      routing,
      policy,
      certs,
    }));
    const served = await publishToApps(options, { opened, proxy, certs });
    routing.start();
    policy.source?.start(options.reloadIntervalMs);
    log(readyLine({ opened, routing, proxy, certs, served, started }));
    batched?.flush(); // "ready" is what operators and tests wait for
    return running({ opened, routing, policy, proxy, served });
  } catch (error) {
    await abandonStart(opened);
    throw error;
  }
}

/**
 * Opens what decides about calls: the audit log, the upstream credentials,
 * the routing files and the call policy. A bad audit policy, a token the API
 * server refuses or a bad routing file stops the start here, before anything
 * is served.
 */
async function openGovernance(
  options: SidecarOptions,
  opened: Opened,
): Promise<{ routing: RoutingSource; policy: Policy }> {
  const log = opened.log;
  opened.audit = await openAudit(options.audit ?? {}, { log });
  await opened.upstream.auth(); // fail now, not at the first app call
  const routing = await RoutingSource.open(opened.upstream, {
    configFile: options.routingConfig,
    clustersDir: options.clustersDir,
    healthIntervalMs: options.healthIntervalMs,
    pollIntervalMs: options.reloadIntervalMs,
    log,
    onReload: opened.metrics?.reloaded,
  });
  opened.routing = routing;
  return { routing, policy: openPolicy(options.policyFile, log) };
}

/** The proxy's wiring: listen addresses, TLS, routing and every observer. */
function proxyOptions(
  options: SidecarOptions,
  parts: {
    opened: Opened;
    routing: RoutingSource;
    policy: Policy;
    certs: Certificates;
  },
): Parameters<typeof startProxy>[0] {
  const { metrics, tracing, audit, log } = parts.opened;
  return {
    hosts: options.hosts.filter((h) => h !== "::1"),
    optionalHosts: options.hosts.filter((h) => h === "::1"),
    port: options.port,
    certPem: parts.certs.server.certPem,
    keyPem: parts.certs.server.keyPem,
    routing: parts.routing,
    log,
    connectTimeoutMs: options.connectTimeoutMs,
    headTimeoutMs: options.headTimeoutMs,
    observers: [
      ...(options.observers ?? []),
      ...(metrics ? [metrics.observer] : []),
      ...(tracing ? [tracing.observer] : []),
      ...(audit ? [audit.observer] : []),
    ],
    policy: options.policy ?? parts.policy.current,
    identity: options.identity ?? workloadIdentity(options.saDir),
  };
}

/**
 * Serves `/metrics` and writes the app-facing service-account files, last:
 * an app that sees `ca.crt` finds the proxy already serving. On failure the
 * listeners opened here and the proxy are closed again.
 */
async function publishToApps(
  options: SidecarOptions,
  parts: { opened: Opened; proxy: Proxy; certs: Certificates },
): Promise<MetricsServer | undefined> {
  let served: MetricsServer | undefined;
  try {
    served = await serveSidecarMetrics(
      parts.opened.metrics,
      options.metrics ?? {},
    );
    await writeAppServiceAccount(options.mcaSaDir, {
      caPem: parts.certs.ca.certPem,
      namespace: parts.opened.upstream.namespace,
    });
    return served;
  } catch (error) {
    await served?.close();
    await parts.proxy.close();
    throw error;
  }
}

/** The `ready` log line: what is served, from where, and how fast. */
function readyLine(parts: {
  opened: Opened;
  routing: RoutingSource;
  proxy: Proxy;
  certs: Certificates;
  served?: MetricsServer;
  started: number;
}): string {
  const { proxy, routing, served } = parts;
  return formatEvent("info", "ready", {
    listen: proxy.hosts.map((h) =>
      h.includes(":") ? `[${h}]:${proxy.port}` : `${h}:${proxy.port}`
    ),
    upstream: parts.opened.upstream.source,
    caReused: parts.certs.caReused,
    clusters: [...routing.current.registry.names()].sort(),
    rules: routing.current.config.rules.length,
    audit: parts.opened.audit !== undefined,
    metrics: served ? `${served.hostname}:${served.port}` : "off",
    tracing: parts.opened.tracing ? "on" : "off",
    startupMs: Math.round(performance.now() - parts.started),
  });
}

/** The running sidecar; `close` stops it in the order calls need. */
function running(parts: {
  opened: Opened;
  routing: RoutingSource;
  policy: Policy;
  proxy: Proxy;
  served?: MetricsServer;
}): Sidecar {
  const { opened, routing, policy, proxy, served } = parts;
  const { log, batched, upstream, tracing, audit } = opened;
  return {
    proxy,
    audit,
    metrics: served,
    async close() {
      routing.close();
      policy.source?.close();
      await served?.close();
      await proxy.close();
      await tracing?.close();
      await audit?.close(); // after the last call's events
      upstream.close();
      log(formatEvent("info", "stopped"));
      batched?.flush();
    },
  };
}

/** Closes what a failed start opened (a started proxy is closed by {@linkcode publishToApps}). */
async function abandonStart(opened: Opened): Promise<void> {
  opened.routing?.close();
  await opened.tracing?.close();
  await opened.audit?.close();
  opened.upstream.close();
  opened.batched?.flush();
}
