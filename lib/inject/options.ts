/**
 * What a user may tune about the injected sidecar, its defaults, and the
 * checks that refuse a value the API server or `mca` would reject.
 *
 * Checked before the Pod is touched, so a bad flag fails with its own message
 * rather than as an invalid Pod at admission time.
 *
 * @module
 */

import { PROXY_PORT } from "./names.ts";
import { InjectError } from "./pod_json.ts";

/** What a user may tune about the injected sidecar. */
export interface InjectOptions {
  /** Sidecar image; `mca:latest` when not set. */
  image?: string;
  /** `imagePullPolicy` of the sidecar; omitted (cluster default) when not set. */
  imagePullPolicy?: string;
  /** UID and GID the sidecar runs as; 65532 (distroless nonroot) by default. */
  runAsUser?: number;
  /** CPU request; `10m` by default, empty string to omit. */
  cpuRequest?: string;
  /** Memory request; `96Mi` by default, empty string to omit. */
  memoryRequest?: string;
  /** Memory limit; `512Mi` by default, empty string to omit. */
  memoryLimit?: string;
  /** ConfigMap with `routing.yaml` (Phase 2 rules); none by default. */
  routingConfigMap?: string;
  /** Secret of kubeconfig files (Phase 2 clusters); none by default. */
  clustersSecret?: string;
  /** ConfigMap with `policy.yaml`; none by default. */
  policyConfigMap?: string;
  /** Metrics port of `mca` (a named containerPort); 0 (off) by default. */
  metricsPort?: number;
}

/** Defaults applied when an option is not set. */
export const DEFAULT_OPTIONS: Required<InjectOptions> = {
  image: "mca:latest",
  imagePullPolicy: "",
  runAsUser: 65532,
  cpuRequest: "10m",
  memoryRequest: "96Mi",
  memoryLimit: "512Mi",
  routingConfigMap: "",
  clustersSecret: "",
  policyConfigMap: "",
  metricsPort: 0,
};

/**
 * The options with every default filled in (an explicit `undefined` reads as
 * not set), refused when a name or port could not work.
 */
export function resolveOptions(
  options: InjectOptions,
): Required<InjectOptions> {
  const opts = { ...DEFAULT_OPTIONS, ...dropUndefined(options) };
  checkWiring(opts);
  return opts;
}

const DNS_SUBDOMAIN =
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Refuses object names and ports the API server or `mca` would reject. */
function checkWiring(opts: Required<InjectOptions>): void {
  const names: [string, string][] = [
    ["routing ConfigMap", opts.routingConfigMap],
    ["clusters Secret", opts.clustersSecret],
    ["policy ConfigMap", opts.policyConfigMap],
  ];
  for (const [what, name] of names) {
    if (name && (name.length > 253 || !DNS_SUBDOMAIN.test(name))) {
      throw new InjectError(
        `the ${what} name ${JSON.stringify(name)} is not a valid object name ` +
          "(lower-case letters, digits, '-' and '.', at most 253 characters)",
      );
    }
  }
  const port = opts.metricsPort;
  if (
    !Number.isInteger(port) || port < 0 || port > 65535 || port === PROXY_PORT
  ) {
    throw new InjectError(
      `the metrics port must be a whole number 1-65535 other than ${PROXY_PORT} ` +
        `(or 0 for none), got ${JSON.stringify(port)}`,
    );
  }
}

function dropUndefined(options: InjectOptions): InjectOptions {
  return Object.fromEntries(
    Object.entries(options).filter(([, v]) => v !== undefined),
  );
}
