/**
 * `mca`: the Multi Cluster Adapter. One binary, modes chosen by flags:
 * `mca` runs the proxy, `mca --inject` rewrites manifests, `mca --probe` is
 * the sidecar's startup probe. This file only parses flags and dispatches.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  DEFAULT_OPTIONS,
  InjectError,
  MCA_SA_PATH,
  MCA_STATE_PATH,
  METRICS_PORT_NAME,
  POLICY_KEY,
  ROUTING_KEY,
  SA_PATH,
} from "./lib/inject/pod_spec.ts";
import type { InjectOptions } from "./lib/inject/pod_spec.ts";
import { injectManifests } from "./lib/inject/manifest.ts";
import { runProbe } from "./lib/sidecar/probe.ts";
import { startSidecar } from "./lib/sidecar/run.ts";
import { metricsFlags } from "./lib/sidecar/metrics_endpoint.ts";
import { METRICS_PORT } from "./lib/observe/metrics.ts";
import { startWebhook } from "./lib/webhook/server.ts";

const VERSION = "0.1.0";

const HELP = `mca ${VERSION} — Multi Cluster Adapter

A Kubernetes sidecar that is a TLS man-in-the-middle for every Kubernetes API
call the other containers of its Pod make.

Usage:
  mca [proxy flags]                 run the proxy (the sidecar's main process)
  mca --inject [inject flags] < in.yaml > out.yaml
                                    add the mca sidecar to Pods / pod templates
  mca --probe [probe flags]         startup probe: exit 0 once the proxy is ready
  mca --webhook [webhook flags] [inject flags]
                                    mutating admission webhook (automatic injection)
  mca --help | --version

Proxy flags:
  --sa-dir DIR               the real service-account directory
                             (default ${SA_PATH})
  --mca-sa-dir DIR           where to write the apps' service-account files
                             (default ${MCA_SA_PATH})
  --state-dir DIR            where the CA is kept across restarts; only mca
                             may read it (default ${MCA_STATE_PATH})
  --listen ADDRS             comma-separated listen addresses (default
                             127.0.0.1,::1; ::1 is skipped without IPv6)
  --port N                   listen port (default 6443; 0 picks a free
                             port, for tests)
  --kubeconfig FILE          use this kubeconfig instead of the in-cluster
                             service account (local development); without
                             a service account, KUBECONFIG and
                             ~/.kube/config are tried
  --context NAME             kubeconfig context (default: the current one)
  --connect-timeout-ms N     bound on connecting to the API server; past it
                             the app gets a 503 Status (default 10000)

Multi-cluster flags (Phase 2):
  --clusters-dir DIR         kubeconfig files (e.g. a mounted Secret); each
                             context is a cluster, named after the context;
                             the Pod's own cluster is always "local"
  --routing-config FILE      routing rules (e.g. a mounted ConfigMap);
                             reloaded when it changes, an invalid version is
                             rejected and the previous one kept; without it
                             every call goes to "local"
  --policy FILE              call policy (mca.io/v1alpha1 Policy, e.g. a
                             mounted ConfigMap); reloaded like the routing
                             file; a refused call gets a 403 Forbidden Status
  --health-interval-ms N     how often each cluster's /readyz is probed
                             (default 5000)

Audit flags (Phase 3):
  --audit-policy FILE        what to record: kube-apiserver's audit.k8s.io/v1
                             Policy format (levels None, Metadata, Request,
                             RequestResponse; first matching rule wins); a
                             malformed file stops the start (file:line)
  --audit-log PATH           write audit.k8s.io/v1 Events, one JSON per line,
                             to PATH ("-" = stdout); an unwritable file is
                             reported and its events dropped, calls go on
  --audit-log-maxsize MB     rotate the audit log at this size (default 100)
  --audit-log-maxbackup N    rotated files to keep; 0 keeps all (default 3)
  --audit-webhook-url URL    also POST batches of Events (EventList) to URL;
                             bounded buffer, retries with back-off, events
                             dropped when full are counted

Metrics flags (Phase 3):
  --metrics-listen ADDR      address of the plain-HTTP /metrics endpoint
                             (default 0.0.0.0: the Pod IP, for Prometheus)
  --metrics-port N           its port (default ${METRICS_PORT}; 0 turns
                             metrics off)

Inject flags:
  --image IMAGE              sidecar image (default ${DEFAULT_OPTIONS.image})
  --image-pull-policy P      Always | IfNotPresent | Never (default: omitted,
                             so the cluster's default applies)
  --run-as-user UID          UID and GID of the sidecar (default ${DEFAULT_OPTIONS.runAsUser}, non-root)
  --cpu-request Q            CPU request (default ${DEFAULT_OPTIONS.cpuRequest}; "" omits it)
  --memory-request Q         memory request (default ${DEFAULT_OPTIONS.memoryRequest}; "" omits it)
  --memory-limit Q           memory limit (default ${DEFAULT_OPTIONS.memoryLimit}; "" omits it)
  --routing-configmap NAME   mount ConfigMap NAME (key ${ROUTING_KEY}) into mca
                             and pass --routing-config
  --clusters-secret NAME     mount Secret NAME (kubeconfig files) into mca and
                             pass --clusters-dir
  --policy-configmap NAME    mount ConfigMap NAME (key ${POLICY_KEY}) into mca and
                             pass --policy
  --metrics-port N           give mca a containerPort ${METRICS_PORT_NAME} N and pass
                             --metrics-port (suggested ${METRICS_PORT}; default none)

  Input: YAML or JSON on stdin, one or more documents (---), Lists, and
  Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
  Job, CronJob and PodTemplate objects; other kinds pass through unchanged.
  Output: YAML on stdout. On any error: one line on stderr, exit 1, nothing
  on stdout.

Probe flags:
  --mca-sa-dir DIR           the app-facing service-account directory
                             (default ${MCA_SA_PATH})
  --port N                   the proxy's port (default 6443)
  --timeout-ms N             give up after N ms (default 3000)

Webhook flags (the inject flags above are the sidecar defaults; Pods
override them with mca.io/* annotations):
  --listen ADDR              listen address (default 0.0.0.0)
  --port N                   HTTPS port (default 8443)
  --tls-cert FILE            serving certificate (PEM), re-read when it changes
  --tls-key FILE             its private key (PEM)
  --namespace NAME           the webhook's own namespace, never injected
                             (default $POD_NAMESPACE, else mca-system)

Exit codes: 0 success, 1 bad input or not ready, 2 bad flags.
`;

function fail(message: string, code: number): never {
  console.error(`mca: ${message}`);
  Deno.exit(code);
}

function parseFlags(args: string[]) {
  try {
    return parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
        inject: { type: "boolean" },
        probe: { type: "boolean" },
        webhook: { type: "boolean" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        namespace: { type: "string" },
        image: { type: "string" },
        "image-pull-policy": { type: "string" },
        "run-as-user": { type: "string" },
        "cpu-request": { type: "string" },
        "memory-request": { type: "string" },
        "memory-limit": { type: "string" },
        "routing-configmap": { type: "string" },
        "clusters-secret": { type: "string" },
        "policy-configmap": { type: "string" },
        "metrics-port": { type: "string" },
        "mca-sa-dir": { type: "string" },
        port: { type: "string" },
        "timeout-ms": { type: "string" },
        "sa-dir": { type: "string" },
        "state-dir": { type: "string" },
        listen: { type: "string" },
        kubeconfig: { type: "string" },
        context: { type: "string" },
        "connect-timeout-ms": { type: "string" },
        "routing-config": { type: "string" },
        "policy": { type: "string" },
        "clusters-dir": { type: "string" },
        "health-interval-ms": { type: "string" },
        "audit-policy": { type: "string" },
        "audit-log": { type: "string" },
        "audit-log-maxsize": { type: "string" },
        "audit-log-maxbackup": { type: "string" },
        "audit-webhook-url": { type: "string" },
        "metrics-listen": { type: "string" },
      },
    }).values;
  } catch (error) {
    fail(`${(error as Error).message}; see mca --help`, 2);
  }
}

function positiveInt(
  flag: string,
  value: string | undefined,
): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value) || Number(value) <= 0) {
    fail(
      `--${flag} must be a positive whole number, got ${JSON.stringify(value)}`,
      2,
    );
  }
  return Number(value);
}

function portNumber(value: string | undefined): number {
  if (value === undefined) return 6443;
  if (!/^[0-9]+$/.test(value) || Number(value) > 65535) {
    fail(`--port must be 0-65535, got ${JSON.stringify(value)}`, 2);
  }
  return Number(value);
}

function injectOptions(flags: ReturnType<typeof parseFlags>): InjectOptions {
  const policy = flags["image-pull-policy"];
  if (
    policy !== undefined &&
    !["Always", "IfNotPresent", "Never"].includes(policy)
  ) {
    fail(
      `--image-pull-policy must be Always, IfNotPresent or Never, got ${
        JSON.stringify(policy)
      }`,
      2,
    );
  }
  if (flags.image !== undefined && flags.image.trim() === "") {
    fail("--image must not be empty", 2);
  }
  return {
    image: flags.image,
    imagePullPolicy: policy,
    runAsUser: positiveInt("run-as-user", flags["run-as-user"]),
    cpuRequest: flags["cpu-request"],
    memoryRequest: flags["memory-request"],
    memoryLimit: flags["memory-limit"],
    routingConfigMap: flags["routing-configmap"],
    clustersSecret: flags["clusters-secret"],
    policyConfigMap: flags["policy-configmap"],
    metricsPort: positiveInt("metrics-port", flags["metrics-port"]),
  };
}

async function inject(options: InjectOptions): Promise<void> {
  const input = await new Response(Deno.stdin.readable).text();
  let output: string;
  try {
    output = injectManifests(input, options);
  } catch (error) {
    if (error instanceof InjectError) fail(error.message, 1);
    throw error;
  }
  const bytes = new TextEncoder().encode(output);
  let written = 0;
  while (written < bytes.length) {
    written += Deno.stdout.writeSync(bytes.subarray(written));
  }
}

async function main(args: string[]): Promise<void> {
  const flags = parseFlags(args);
  if (flags.help) {
    console.log(HELP);
    return;
  }
  if (flags.version) {
    console.log(`mca ${VERSION}`);
    return;
  }
  if (flags.inject && flags.probe) {
    fail("--inject and --probe are separate modes; pick one", 2);
  }
  if (flags.inject) return await inject(injectOptions(flags));
  if (flags.webhook) return await webhook(flags);
  if (flags.probe) {
    const result = await runProbe({
      saDir: flags["mca-sa-dir"] ?? MCA_SA_PATH,
      port: positiveInt("port", flags.port) ?? 6443,
      timeoutMs: positiveInt("timeout-ms", flags["timeout-ms"]) ?? 3000,
    });
    if (!result.ok) fail(`not ready: ${result.reason}`, 1);
    return;
  }
  await proxy(flags);
}

async function proxy(flags: ReturnType<typeof parseFlags>): Promise<void> {
  const hosts = (flags.listen ?? "127.0.0.1,::1").split(",").map((h) =>
    h.trim().replace(/^\[|\]$/g, "")
  ).filter((h) => h !== "");
  if (hosts.length === 0) fail("--listen needs at least one address", 2);
  // Listen for signals before "ready" is logged: a stop may follow at once.
  const { promise: stopped, resolve: stop } = Promise.withResolvers<void>();
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => stop());
  }
  let metrics;
  try {
    metrics = metricsFlags(flags["metrics-listen"], flags["metrics-port"]);
  } catch (error) {
    fail((error as Error).message, 2);
  }
  let sidecar;
  try {
    sidecar = await startSidecar({
      metrics,
      saDir: flags["sa-dir"] ?? SA_PATH,
      mcaSaDir: flags["mca-sa-dir"] ?? MCA_SA_PATH,
      stateDir: flags["state-dir"] ?? MCA_STATE_PATH,
      hosts,
      port: portNumber(flags.port),
      kubeconfig: flags.kubeconfig,
      context: flags.context,
      connectTimeoutMs: positiveInt(
        "connect-timeout-ms",
        flags["connect-timeout-ms"],
      ),
      routingConfig: flags["routing-config"],
      policyFile: flags["policy"],
      clustersDir: flags["clusters-dir"],
      healthIntervalMs: positiveInt(
        "health-interval-ms",
        flags["health-interval-ms"],
      ),
      audit: {
        policyFile: flags["audit-policy"],
        logPath: flags["audit-log"],
        logMaxSizeMB: positiveInt(
          "audit-log-maxsize",
          flags["audit-log-maxsize"],
        ),
        logMaxBackups: flags["audit-log-maxbackup"] === "0"
          ? 0
          : positiveInt("audit-log-maxbackup", flags["audit-log-maxbackup"]),
        webhookUrl: flags["audit-webhook-url"],
      },
    });
  } catch (error) {
    fail((error as Error).message, 1);
  }
  await stopped;
  await sidecar.close();
  Deno.exit(0);
}

async function webhook(flags: ReturnType<typeof parseFlags>): Promise<void> {
  if (!flags["tls-cert"] || !flags["tls-key"]) {
    fail("--webhook needs --tls-cert FILE and --tls-key FILE", 2);
  }
  const { promise: stopped, resolve: stop } = Promise.withResolvers<void>();
  for (const s of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(s, () => stop());
  }
  let server;
  try {
    server = await startWebhook({
      host: flags.listen ?? "0.0.0.0",
      port: flags.port === undefined ? 8443 : portNumber(flags.port),
      certFile: flags["tls-cert"],
      keyFile: flags["tls-key"],
      ownNamespace: flags.namespace ?? Deno.env.get("POD_NAMESPACE") ??
        "mca-system",
      defaults: injectOptions(flags),
    });
  } catch (error) {
    fail((error as Error).message, 1);
  }
  await stopped;
  await server.close();
  Deno.exit(0);
}

if (import.meta.main) {
  await main(Deno.args);
}
