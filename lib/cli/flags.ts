/**
 * The flags of `mca`: the table `parseArgs` reads, and the checks that turn
 * flag strings into numbers and options.
 *
 * A bad flag ends the process here with `mca: <message>` on stderr and exit
 * code 2, so every mode reports flag mistakes the same way and before it
 * opens anything.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { InjectOptions } from "../inject/pod_spec.ts";

/** Every flag of every mode (modes share `--port`, `--listen`, …). */
const FLAGS = {
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
} as const;

/** The parsed flags, one field per entry of the flag table. */
export type Flags = ReturnType<typeof parseFlags>;

/** Prints `mca: <message>` on stderr and exits with `code`. */
export function fail(message: string, code: number): never {
  console.error(`mca: ${message}`);
  Deno.exit(code);
}

/** Parses the command line; an unknown flag or a positional exits with 2. */
export function parseFlags(args: string[]) {
  try {
    return parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: FLAGS,
    }).values;
  } catch (error) {
    fail(`${(error as Error).message}; see mca --help`, 2);
  }
}

/** A flag that must be a positive whole number; undefined when absent. */
export function positiveInt(
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

/** `--port` of the proxy and the webhook: 0-65535, 6443 when absent. */
export function portNumber(value: string | undefined): number {
  if (value === undefined) return 6443;
  if (!/^[0-9]+$/.test(value) || Number(value) > 65535) {
    fail(`--port must be 0-65535, got ${JSON.stringify(value)}`, 2);
  }
  return Number(value);
}

/** The inject flags (shared by `--inject` and `--webhook`) as options. */
export function injectOptions(flags: Flags): InjectOptions {
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
