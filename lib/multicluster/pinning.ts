/**
 * Versions belong to the cluster that issued them. A call that is served by
 * one cluster of a set (a `first-healthy` rule, or one cluster of a spread
 * set) carries versions as mca gave them (`{east: N}`), so a version of one
 * cluster is never sent to another: after a first-healthy switch, a watch or
 * LIST from the old cluster's version is `410 Expired` (client-go relists,
 * from the cluster now serving) instead of the new cluster replaying its own
 * history into the app's cache; a write of an object read from the old
 * cluster is `409 Conflict` (read it again).
 *
 * Pure: strings and plans in, strings and plans out.
 *
 * @module
 */

import {
  decodeContinue,
  decodeResourceVersion,
  encodeContinue,
  encodeResourceVersion,
} from "../kube/resource_version.ts";
import type { Plan } from "../routing/router.ts";
import {
  clusterTarget,
  mapTarget,
  type NamespaceMap,
  queryParam,
} from "./fanout_request.ts";

/**
 * The request target for `cluster`: a composite `resourceVersion` replaced
 * by that cluster's own entry, the namespace mapped. Undefined when the
 * version is not that cluster's (another cluster's, or not mca's), which
 * the app must be told is gone.
 */
export function pinnedTarget(
  url: string,
  cluster: string,
  namespace?: NamespaceMap,
): string | undefined {
  const params: Record<string, string> = {};
  const rv = queryParam(url, "resourceVersion");
  if (rv !== undefined && rv !== "" && rv !== "0") {
    const own = decodeResourceVersion(rv)?.[cluster];
    if (own === undefined) return undefined;
    params.resourceVersion = own;
  }
  const token = queryParam(url, "continue");
  if (token) {
    // a page's continue token holds a version of the cluster that gave it
    const state = decodeContinue(token);
    if (state?.cluster !== cluster) return undefined;
    params.continue = state.continue;
  }
  return Object.keys(params).length === 0
    ? mapTarget(url, namespace)
    : clusterTarget(url, params, namespace);
}

/** A page's own continue token, wrapped with the cluster that gave it. */
export function pinnedContinue(cluster: string, own: string): string {
  return encodeContinue({ cluster, continue: own, versions: {} });
}

/** Why a version cannot be served by `cluster`, for the 410's message. */
export function notThisCluster(cluster: string): string {
  return `the resourceVersion was not issued by cluster ${cluster}, which serves this call now; list again`;
}

/**
 * A first-healthy plan for a write whose body names the cluster it was read
 * from: that cluster only (its version means nothing elsewhere), or a
 * message for a 409 when the rule now serves from another cluster.
 */
export function pinToObject(
  plan: Plan,
  objectCluster: string | undefined,
): Plan | { conflict: string } {
  if (plan.kind !== "one" || !plan.fallbacks || objectCluster === undefined) {
    return plan;
  }
  if (objectCluster !== plan.cluster) {
    return {
      conflict:
        `mca: the object was read from cluster ${objectCluster}, but rule ${plan.rule} serves from cluster ${plan.cluster} now; read it again`,
    };
  }
  return { ...plan, fallbacks: [] };
}

/**
 * A list's (or Table's) own version, as its items': `{cluster: rv}`, so
 * that a watch or relist from it is pinned to the cluster that gave it.
 * Works on JSON bodies and on protobuf stubs alike (both have `metadata`).
 */
export function stampList(body: unknown, cluster: string): void {
  if (body === null || typeof body !== "object") return;
  const list = body as Record<string, unknown>;
  if (!Array.isArray(list.items) && !Array.isArray(list.rows)) return;
  const meta = list.metadata as Record<string, unknown> | undefined;
  if (
    typeof meta?.resourceVersion === "string" && meta.resourceVersion !== ""
  ) {
    meta.resourceVersion = encodeResourceVersion({
      [cluster]: meta.resourceVersion,
    });
  }
  if (typeof meta?.continue === "string" && meta.continue !== "") {
    meta.continue = pinnedContinue(cluster, meta.continue);
  }
}
