/**
 * The Pod mutation behind `mca --inject`.
 *
 * This module is a pure function from a Pod spec to a Pod spec so that the
 * CLI and a future admission webhook share one implementation. It knows
 * nothing of YAML, files or streams (see `manifest.ts` for those).
 *
 * @module
 */

/** A JSON object as found in a Kubernetes manifest. */
export type JsonObject = { [key: string]: unknown };

/** Where every in-cluster SDK looks for its service-account files. */
export const SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";
/** Where `mca` writes the service-account directory the apps see. */
export const MCA_SA_PATH = "/var/run/secrets/kubernetes.io/mca-serviceaccount";
/** Where `mca` keeps its CA key; mounted into the `mca` container only. */
export const MCA_STATE_PATH = "/var/lib/mca";
/** The real service-account volume, mounted into `mca` only. */
export const REAL_SA_VOLUME = "kube-api-access-sa";
/** The fake service-account volume `mca` writes and the apps read. */
export const MCA_SA_VOLUME = "kube-api-access-mca-sa";
/** The CA state volume, so a restarted `mca` keeps the CA the apps trust. */
export const MCA_STATE_VOLUME = "mca-state";
/** The sidecar's container name. */
export const MCA_CONTAINER = "mca";
/** Where the binary lives in the image (the startup probe runs it). */
export const MCA_BINARY = "/usr/local/bin/mca";
/** Loopback address and port the apps are pointed at. */
export const PROXY_HOST = "127.0.0.1";
/** Port the proxy listens on (the Kubernetes API convention). */
export const PROXY_PORT = 6443;
/**
 * Default port of mca's Prometheus metrics endpoint (`--metrics-port`).
 * Pod containers share one network namespace, so the port must not be one an
 * app or another mesh is likely to bind: 6453 sits next to the proxy's 6443
 * and outside 8080/8443/9090, the Prometheus exporters' 9100-9999 registry
 * (which holds OpenTelemetry's 9464), Istio's 15000-15090 and Linkerd's
 * 4140-4191.
 */
export const METRICS_PORT = 6453;
/** Name of the metrics containerPort (scrape configs select it by name). */
export const METRICS_PORT_NAME = "mca-metrics";
/** Volume of the routing ConfigMap (Phase 2), mounted into `mca` only. */
export const ROUTING_VOLUME = "mca-routing";
/** Volume of the clusters Secret (kubeconfigs), mounted into `mca` only. */
export const CLUSTERS_VOLUME = "mca-clusters";
/** Volume of the policy ConfigMap, mounted into `mca` only. */
export const POLICY_VOLUME = "mca-policy";
/** Where the routing ConfigMap is mounted; its key `routing.yaml` is read. */
export const ROUTING_DIR = "/etc/mca/routing";
/** Where the clusters Secret is mounted (`--clusters-dir`). */
export const CLUSTERS_DIR = "/etc/mca/clusters";
/** Where the policy ConfigMap is mounted; its key `policy.yaml` is read. */
export const POLICY_DIR = "/etc/mca/policy";
/** The ConfigMap key holding the routing rules. */
export const ROUTING_KEY = "routing.yaml";
/** The ConfigMap key holding the policy. */
export const POLICY_KEY = "policy.yaml";

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
  /** Memory request; `64Mi` by default, empty string to omit. */
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

/** Raised for input that cannot be injected; the message says what to do. */
export class InjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InjectError";
  }
}

/** Defaults applied when an option is not set. */
export const DEFAULT_OPTIONS: Required<InjectOptions> = {
  image: "mca:latest",
  imagePullPolicy: "",
  runAsUser: 65532,
  cpuRequest: "10m",
  memoryRequest: "64Mi",
  memoryLimit: "512Mi",
  routingConfigMap: "",
  clustersSecret: "",
  policyConfigMap: "",
  metricsPort: 0,
};

/** Volumes and mounts the injector owns besides the three SA/state ones. */
const WIRED_VOLUMES = [ROUTING_VOLUME, CLUSTERS_VOLUME, POLICY_VOLUME];

/**
 * Returns a new Pod spec with the `mca` sidecar injected.
 *
 * The input is never modified. Applying it to its own output yields an equal
 * spec, which is what makes `mca --inject` idempotent.
 */
export function injectPodSpec(
  spec: JsonObject,
  options: InjectOptions = {},
): JsonObject {
  const opts = { ...DEFAULT_OPTIONS, ...dropUndefined(options) };
  checkWiring(opts);
  if (spec.hostNetwork === true) {
    throw new InjectError(
      "the Pod uses hostNetwork: true, so 127.0.0.1:6443 would be the node's own loopback " +
        "(where a control-plane kube-apiserver may listen); MCA cannot sit in front of it: " +
        "remove hostNetwork or do not inject this Pod",
    );
  }
  if (spec.shareProcessNamespace === true) {
    throw new InjectError(
      "the Pod uses shareProcessNamespace: true, so its apps could read mca's real " +
        "service-account token through /proc/<mca pid>/root or /proc/<mca pid>/environ: " +
        "remove shareProcessNamespace or do not inject this Pod",
    );
  }
  const out = structuredClone(spec);
  const containers = listOf(out.containers, "spec.containers");
  for (const c of containers) {
    if (c.name === MCA_CONTAINER && !isMcaImage(c.image, opts.image)) {
      throw new InjectError(
        `spec.containers already has a container named "mca" with image ` +
          `${
            JSON.stringify(c.image ?? "")
          }, which is not an MCA image; rename that container ` +
          `(the name "mca" is reserved for the sidecar)`,
      );
    }
  }
  const apps = containers.filter((c) => c.name !== MCA_CONTAINER);
  const inits = listOf(out.initContainers, "spec.initContainers")
    .filter((c) => c.name !== MCA_CONTAINER);

  out.automountServiceAccountToken = false;
  out.initContainers = [
    mcaContainer(opts),
    ...inits.map(redirectContainer),
  ];
  out.containers = apps.map(redirectContainer);
  out.volumes = withVolumes(listOf(out.volumes, "spec.volumes"), opts);
  return out;
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

/** True when an image reference names an MCA image (any registry or tag). */
export function isMcaImage(image: unknown, configured: string): boolean {
  if (typeof image !== "string") return false;
  const repo = imageRepository(image);
  return repo === imageRepository(configured) ||
    repo.split("/").pop() === "mca";
}

function imageRepository(image: string): string {
  const noDigest = image.split("@")[0];
  const lastSlash = noDigest.lastIndexOf("/");
  const lastColon = noDigest.lastIndexOf(":");
  return lastColon > lastSlash ? noDigest.slice(0, lastColon) : noDigest;
}

function mcaContainer(opts: Required<InjectOptions>): JsonObject {
  const container: JsonObject = { name: MCA_CONTAINER, image: opts.image };
  if (opts.imagePullPolicy) container.imagePullPolicy = opts.imagePullPolicy;
  const args = mcaArgs(opts);
  if (args.length > 0) container.args = args;
  if (opts.metricsPort > 0) {
    container.ports = [{
      name: METRICS_PORT_NAME,
      containerPort: opts.metricsPort,
      protocol: "TCP",
    }];
  }
  container.restartPolicy = "Always";
  container.startupProbe = {
    exec: { command: [MCA_BINARY, "--probe"] },
    periodSeconds: 1,
    timeoutSeconds: 5,
    failureThreshold: 60,
  };
  const requests: JsonObject = {};
  if (opts.cpuRequest) requests.cpu = opts.cpuRequest;
  if (opts.memoryRequest) requests.memory = opts.memoryRequest;
  const resources: JsonObject = {};
  if (Object.keys(requests).length > 0) resources.requests = requests;
  if (opts.memoryLimit) resources.limits = { memory: opts.memoryLimit };
  if (Object.keys(resources).length > 0) container.resources = resources;
  container.securityContext = {
    runAsNonRoot: true,
    runAsUser: opts.runAsUser,
    runAsGroup: opts.runAsUser,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
  container.volumeMounts = [
    { name: REAL_SA_VOLUME, mountPath: SA_PATH, readOnly: true },
    { name: MCA_SA_VOLUME, mountPath: MCA_SA_PATH },
    { name: MCA_STATE_VOLUME, mountPath: MCA_STATE_PATH },
    ...wiredMounts(opts),
  ];
  return container;
}

/** The proxy flags that point `mca` at the mounted Phase 2 / policy files. */
function mcaArgs(opts: Required<InjectOptions>): string[] {
  const args: string[] = [];
  if (opts.clustersSecret) args.push("--clusters-dir", CLUSTERS_DIR);
  if (opts.routingConfigMap) {
    args.push("--routing-config", `${ROUTING_DIR}/${ROUTING_KEY}`);
  }
  if (opts.policyConfigMap) {
    args.push("--policy", `${POLICY_DIR}/${POLICY_KEY}`);
  }
  if (opts.metricsPort > 0) {
    args.push("--metrics-port", String(opts.metricsPort));
  }
  return args;
}

function wiredMounts(opts: Required<InjectOptions>): JsonObject[] {
  const mounts: JsonObject[] = [];
  if (opts.routingConfigMap) {
    mounts.push({
      name: ROUTING_VOLUME,
      mountPath: ROUTING_DIR,
      readOnly: true,
    });
  }
  if (opts.clustersSecret) {
    mounts.push({
      name: CLUSTERS_VOLUME,
      mountPath: CLUSTERS_DIR,
      readOnly: true,
    });
  }
  if (opts.policyConfigMap) {
    mounts.push({ name: POLICY_VOLUME, mountPath: POLICY_DIR, readOnly: true });
  }
  return mounts;
}

function wiredVolumes(opts: Required<InjectOptions>): JsonObject[] {
  const volumes: JsonObject[] = [];
  if (opts.routingConfigMap) {
    volumes.push({
      name: ROUTING_VOLUME,
      configMap: { name: opts.routingConfigMap },
    });
  }
  if (opts.clustersSecret) {
    volumes.push({
      name: CLUSTERS_VOLUME,
      secret: { secretName: opts.clustersSecret },
    });
  }
  if (opts.policyConfigMap) {
    volumes.push({
      name: POLICY_VOLUME,
      configMap: { name: opts.policyConfigMap },
    });
  }
  return volumes;
}

/** Points one app container at the proxy and at the fake SA directory. */
function redirectContainer(container: JsonObject): JsonObject {
  const out = { ...container };
  out.env = withEnv(listOf(out.env, `env of container ${out.name}`), {
    KUBERNETES_SERVICE_HOST: PROXY_HOST,
    KUBERNETES_SERVICE_PORT: String(PROXY_PORT),
  });
  out.volumeMounts = withSaMount(
    listOf(out.volumeMounts, `volumeMounts of container ${out.name}`),
  );
  return out;
}

function withEnv(
  env: JsonObject[],
  wanted: Record<string, string>,
): JsonObject[] {
  const out: JsonObject[] = [];
  const seen = new Set<string>();
  for (const entry of env) {
    const name = entry.name;
    if (typeof name === "string" && name in wanted) {
      if (seen.has(name)) continue;
      seen.add(name);
      out.push({ name, value: wanted[name] });
    } else {
      out.push(entry);
    }
  }
  for (const [name, value] of Object.entries(wanted)) {
    if (!seen.has(name)) out.push({ name, value });
  }
  return out;
}

/** True for a mount that would shadow or expose service-account files. */
function isSaMount(mount: JsonObject): boolean {
  const path = typeof mount.mountPath === "string"
    ? mount.mountPath.replace(/\/+$/, "")
    : "";
  return path === SA_PATH || path.startsWith(SA_PATH + "/") ||
    mount.name === REAL_SA_VOLUME || mount.name === MCA_STATE_VOLUME ||
    WIRED_VOLUMES.includes(mount.name as string);
}

function withSaMount(mounts: JsonObject[]): JsonObject[] {
  const ours = { name: MCA_SA_VOLUME, mountPath: SA_PATH, readOnly: true };
  const out: JsonObject[] = [];
  let placed = false;
  for (const mount of mounts) {
    if (!isSaMount(mount)) {
      out.push(mount);
    } else if (!placed) {
      out.push(ours);
      placed = true;
    }
  }
  if (!placed) out.push(ours);
  return out;
}

function wantedVolumes(opts: Required<InjectOptions>): JsonObject[] {
  return [
    {
      name: REAL_SA_VOLUME,
      projected: {
        defaultMode: 420,
        sources: [
          {
            serviceAccountToken: { expirationSeconds: 3607, path: "token" },
          },
          {
            configMap: {
              name: "kube-root-ca.crt",
              items: [{ key: "ca.crt", path: "ca.crt" }],
            },
          },
          {
            downwardAPI: {
              items: [{
                path: "namespace",
                fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" },
              }],
            },
          },
        ],
      },
    },
    { name: MCA_SA_VOLUME, emptyDir: {} },
    {
      name: MCA_STATE_VOLUME,
      emptyDir: { medium: "Memory", sizeLimit: "1Mi" },
    },
    ...wiredVolumes(opts),
  ];
}

/**
 * Our volumes replace same-named ones; a wired volume (routing, clusters,
 * policy) no longer asked for is dropped, so re-injecting with other options
 * leaves no stale mount of another ConfigMap or Secret behind.
 */
function withVolumes(
  volumes: JsonObject[],
  opts: Required<InjectOptions>,
): JsonObject[] {
  const wanted = new Map(
    wantedVolumes(opts).map((v) => [v.name as string, v]),
  );
  const out: JsonObject[] = [];
  const placed = new Set<string>();
  for (const volume of volumes) {
    const name = volume.name as string;
    const replacement = wanted.get(name);
    if (!replacement) {
      if (!WIRED_VOLUMES.includes(name)) out.push(volume);
    } else if (!placed.has(name)) {
      out.push(replacement);
      placed.add(name);
    }
  }
  for (const [name, volume] of wanted) {
    if (!placed.has(name)) out.push(volume);
  }
  return out;
}

function listOf(value: unknown, what: string): JsonObject[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    throw new InjectError(`${what} must be a list, got ${typeof value}`);
  }
  for (const item of value) {
    if (item === null || typeof item !== "object" || Array.isArray(item)) {
      throw new InjectError(`${what} must be a list of objects`);
    }
  }
  return value as JsonObject[];
}

function dropUndefined(options: InjectOptions): InjectOptions {
  return Object.fromEntries(
    Object.entries(options).filter(([, v]) => v !== undefined),
  );
}
