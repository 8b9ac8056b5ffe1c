/**
 * Which Kubernetes kinds carry a Pod spec, and where: the one table to extend
 * when `mca --inject` should reach into another workload kind.
 *
 * @module
 */

/**
 * Where each workload kind keeps its Pod spec, keyed by `group/kind` so that
 * a custom resource that happens to be called `Job` passes through untouched.
 */
const POD_SPEC_PATHS: Record<string, string[]> = {
  "/Pod": ["spec"],
  "/PodTemplate": ["template", "spec"],
  "/ReplicationController": ["spec", "template", "spec"],
  "apps/Deployment": ["spec", "template", "spec"],
  "apps/StatefulSet": ["spec", "template", "spec"],
  "apps/DaemonSet": ["spec", "template", "spec"],
  "apps/ReplicaSet": ["spec", "template", "spec"],
  "batch/Job": ["spec", "template", "spec"],
  "batch/CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
};

/** The Pod spec path of an object, or undefined for kinds without one. */
export function podSpecPath(
  apiVersion: unknown,
  kind: string,
): string[] | undefined {
  if (typeof apiVersion !== "string" || apiVersion === "") {
    // No apiVersion: judge by kind alone, as the user clearly meant one.
    const match = Object.keys(POD_SPEC_PATHS).find((k) =>
      k.endsWith("/" + kind)
    );
    return match ? POD_SPEC_PATHS[match] : undefined;
  }
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
  return POD_SPEC_PATHS[`${group}/${kind}`];
}
