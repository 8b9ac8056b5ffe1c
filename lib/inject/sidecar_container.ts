/**
 * The `mca` container the injector adds as a native sidecar (an init
 * container with `restartPolicy: Always`), so it starts before the apps and
 * outlives them.
 *
 * Only this container mounts the real service-account token, the CA state and
 * the wired ConfigMaps/Secret; the apps get none of them (see
 * `app_container.ts`).
 *
 * @module
 */

import type { InjectOptions } from "./options.ts";
import type { JsonObject } from "./pod_json.ts";
import {
  CLUSTERS_DIR,
  CLUSTERS_VOLUME,
  MCA_BINARY,
  MCA_CONTAINER,
  MCA_SA_PATH,
  MCA_SA_VOLUME,
  MCA_STATE_PATH,
  MCA_STATE_VOLUME,
  METRICS_PORT_NAME,
  POLICY_DIR,
  POLICY_KEY,
  POLICY_VOLUME,
  REAL_SA_VOLUME,
  ROUTING_DIR,
  ROUTING_KEY,
  ROUTING_VOLUME,
  SA_PATH,
} from "./names.ts";

/**
 * True when an image reference names an MCA image (any registry or tag), so a
 * re-injection recognises its own sidecar and an app called `mca` is refused.
 */
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

/** The sidecar container, built from scratch on every injection. */
export function mcaContainer(opts: Required<InjectOptions>): JsonObject {
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
  const resources = mcaResources(opts);
  if (Object.keys(resources).length > 0) container.resources = resources;
  container.securityContext = mcaSecurityContext(opts);
  container.volumeMounts = [
    { name: REAL_SA_VOLUME, mountPath: SA_PATH, readOnly: true },
    { name: MCA_SA_VOLUME, mountPath: MCA_SA_PATH },
    { name: MCA_STATE_VOLUME, mountPath: MCA_STATE_PATH },
    ...wiredMounts(opts),
  ];
  return container;
}

/** Requests and limit; an option set to "" leaves its field out. */
function mcaResources(opts: Required<InjectOptions>): JsonObject {
  const requests: JsonObject = {};
  if (opts.cpuRequest) requests.cpu = opts.cpuRequest;
  if (opts.memoryRequest) requests.memory = opts.memoryRequest;
  const resources: JsonObject = {};
  if (Object.keys(requests).length > 0) resources.requests = requests;
  if (opts.memoryLimit) resources.limits = { memory: opts.memoryLimit };
  return resources;
}

/** The restricted Pod Security profile, so `mca` runs in any namespace. */
function mcaSecurityContext(opts: Required<InjectOptions>): JsonObject {
  return {
    runAsNonRoot: true,
    runAsUser: opts.runAsUser,
    runAsGroup: opts.runAsUser,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
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
