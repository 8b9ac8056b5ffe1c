/**
 * The Pod mutation behind `mca --inject`.
 *
 * This module is a pure function from a Pod spec to a Pod spec so that the
 * CLI and a future admission webhook share one implementation. It knows
 * nothing of YAML, files or streams (see `manifest.ts` for those). The parts
 * live beside it: `options.ts` (what may be tuned), `sidecar_container.ts`
 * (the `mca` container), `app_container.ts` (rewriting the apps),
 * `volumes.ts` (the Pod's volumes) and `names.ts` (the paths and names they
 * share); this module re-exports their public names.
 *
 * @module
 */

import { redirectContainer } from "./app_container.ts";
import { MCA_CONTAINER } from "./names.ts";
import { type InjectOptions, resolveOptions } from "./options.ts";
import { InjectError, type JsonObject, listOf } from "./pod_json.ts";
import { isMcaImage, mcaContainer } from "./sidecar_container.ts";
import { withVolumes } from "./volumes.ts";

export * from "./names.ts";
export { DEFAULT_OPTIONS, type InjectOptions } from "./options.ts";
export { InjectError, type JsonObject } from "./pod_json.ts";
export { isMcaImage } from "./sidecar_container.ts";

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
  const opts = resolveOptions(options);
  refuseSharedNamespaces(spec);
  const out = structuredClone(spec);
  const containers = listOf(out.containers, "spec.containers");
  refuseForeignMca(containers, opts.image);
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

/** Refuses Pods whose apps would share the node's or mca's namespaces. */
function refuseSharedNamespaces(spec: JsonObject): void {
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
}

/** Refuses an app container that took the reserved name `mca`. */
function refuseForeignMca(containers: JsonObject[], image: string): void {
  for (const c of containers) {
    if (c.name === MCA_CONTAINER && !isMcaImage(c.image, image)) {
      throw new InjectError(
        `spec.containers already has a container named "mca" with image ` +
          `${
            JSON.stringify(c.image ?? "")
          }, which is not an MCA image; rename that container ` +
          `(the name "mca" is reserved for the sidecar)`,
      );
    }
  }
}
