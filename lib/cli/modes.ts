/**
 * The modes of `mca` once its flags are parsed: `--inject`, `--probe`,
 * `--webhook` and the proxy (the default).
 *
 * Each runner turns flags into the options of one `lib/` entry point, runs
 * it, and maps its failure to the exit code `mca --help` documents (1 for bad
 * input or not ready, 2 for bad flags).
 *
 * @module
 */

import {
  InjectError,
  MCA_SA_PATH,
  MCA_STATE_PATH,
  SA_PATH,
} from "../inject/pod_spec.ts";
import { injectManifests } from "../inject/manifest.ts";
import { runProbe } from "../sidecar/probe.ts";
import { type SidecarOptions, startSidecar } from "../sidecar/run.ts";
import {
  type MetricsEndpointOptions,
  metricsFlags,
} from "../sidecar/metrics_endpoint.ts";
import { startWebhook } from "../webhook/server.ts";
import {
  fail,
  type Flags,
  injectOptions,
  portNumber,
  positiveInt,
} from "./flags.ts";

/**
 * `mca --inject`: manifests on stdin, injected manifests on stdout. The
 * flags are checked before stdin is read.
 */
export async function runInject(flags: Flags): Promise<void> {
  const options = injectOptions(flags);
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

/** `mca --probe`: exits 1 with the reason unless the proxy is ready. */
export async function runProbeMode(flags: Flags): Promise<void> {
  const result = await runProbe({
    saDir: flags["mca-sa-dir"] ?? MCA_SA_PATH,
    port: positiveInt("port", flags.port) ?? 6443,
    timeoutMs: positiveInt("timeout-ms", flags["timeout-ms"]) ?? 3000,
  });
  if (!result.ok) fail(`not ready: ${result.reason}`, 1);
}

/** The default mode: runs the sidecar until SIGTERM or SIGINT. */
export async function runProxy(flags: Flags): Promise<void> {
  const hosts = (flags.listen ?? "127.0.0.1,::1").split(",").map((h) =>
    h.trim().replace(/^\[|\]$/g, "")
  ).filter((h) => h !== "");
  if (hosts.length === 0) fail("--listen needs at least one address", 2);
  // Listen for signals before "ready" is logged: a stop may follow at once.
  const stopped = stopSignal();
  let metrics;
  try {
    metrics = metricsFlags(flags["metrics-listen"], flags["metrics-port"]);
  } catch (error) {
    fail((error as Error).message, 2);
  }
  let sidecar;
  try {
    sidecar = await startSidecar(sidecarOptions(flags, { hosts, metrics }));
  } catch (error) {
    fail((error as Error).message, 1);
  }
  await stopped;
  await sidecar.close();
  Deno.exit(0);
}

/**
 * The proxy flags as sidecar options; a bad number exits with 2, checked in
 * the order the fields are listed.
 */
function sidecarOptions(
  flags: Flags,
  parsed: { hosts: string[]; metrics: MetricsEndpointOptions },
): SidecarOptions {
  return {
    metrics: parsed.metrics,
    saDir: flags["sa-dir"] ?? SA_PATH,
    mcaSaDir: flags["mca-sa-dir"] ?? MCA_SA_PATH,
    stateDir: flags["state-dir"] ?? MCA_STATE_PATH,
    hosts: parsed.hosts,
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
  };
}

/** `mca --webhook`: the admission webhook until SIGTERM or SIGINT. */
export async function runWebhook(flags: Flags): Promise<void> {
  if (!flags["tls-cert"] || !flags["tls-key"]) {
    fail("--webhook needs --tls-cert FILE and --tls-key FILE", 2);
  }
  const stopped = stopSignal();
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

/** Resolves at the first SIGTERM or SIGINT. */
function stopSignal(): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => resolve());
  }
  return promise;
}
