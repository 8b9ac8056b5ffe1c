/**
 * What a multi-cluster read asks each cluster: the app's request target
 * with that cluster's own resourceVersion or continue token, and the app's
 * namespace mapped to the cluster's. Composite versions are decoded here so
 * that the LIST and WATCH code sees only per-cluster ones.
 *
 * Pure: strings in, strings out; the callers do the I/O.
 *
 * @module
 */

import {
  decodeResourceVersion,
  type VersionVector,
} from "../kube/resource_version.ts";
import { rewriteTargetNamespace } from "./rewrite.ts";
import { withoutClusterTerms } from "../routing/cluster_selector.ts";

/** The app's namespace and the one a rule maps it to on the clusters. */
export interface NamespaceMap {
  app: string;
  remote: string;
}

/**
 * The resourceVersion the app asked for: per-cluster versions (a composite
 * MCA issued), `"any"` (none or `0`: any cluster's latest will do), or
 * `"invalid"` (anything else: no cluster's own version means anything for a
 * merged read).
 */
export type RequestedVersions = VersionVector | "any" | "invalid";

/** A query parameter of the app's request target, if present. */
export function queryParam(url: string, key: string): string | undefined {
  return new URL(url, "https://mca.invalid").searchParams.get(key) ??
    undefined;
}

/** Decodes the app's `resourceVersion` parameter (see {@link RequestedVersions}). */
export function requestedVersions(url: string): RequestedVersions {
  const rv = queryParam(url, "resourceVersion") ?? "";
  if (rv === "" || rv === "0") return "any";
  return decodeResourceVersion(rv) ?? "invalid";
}

/**
 * The resourceVersion one cluster is read at: its entry of a composite, the
 * app's own `0` (or nothing) when it asked for any, none when it is invalid.
 */
export function versionFor(url: string, cluster: string): string | undefined {
  const requested = requestedVersions(url);
  if (typeof requested === "object") return requested[cluster];
  if (requested === "invalid") return undefined;
  return queryParam(url, "resourceVersion");
}

/** Maps the app's namespace to the cluster's in a request target. */
export function mapTarget(target: string, namespace?: NamespaceMap): string {
  return namespace
    ? rewriteTargetNamespace(target, namespace.app, namespace.remote)
    : target;
}

/**
 * The request target for one cluster: the app's, with `params` set (an
 * undefined or empty value removes the parameter) and the namespace mapped.
 */
export function clusterTarget(
  url: string,
  params: Record<string, string | undefined>,
  namespace?: NamespaceMap,
): string {
  const parsed = new URL(url, "https://mca.invalid");
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === "") parsed.searchParams.delete(key);
    else parsed.searchParams.set(key, value);
  }
  const selector = parsed.searchParams.get("labelSelector");
  if (selector !== null) {
    // mca's own terms never reach a cluster (see cluster_selector.ts)
    const rest = withoutClusterTerms(selector);
    if (rest === "") parsed.searchParams.delete("labelSelector");
    else if (rest !== selector) parsed.searchParams.set("labelSelector", rest);
  }
  const target = parsed.pathname +
    (parsed.search === "?" ? "" : parsed.search);
  return mapTarget(target, namespace);
}

/**
 * True when the app asks a LIST at exactly its version: an explicit
 * `resourceVersionMatch=Exact`, or kube-apiserver's legacy rule (a first
 * page, `limit` and a version other than `""`/`"0"`, no match). A
 * client-go relist of a paged list is such a read.
 */
export function isExactRead(url: string): boolean {
  const match = queryParam(url, "resourceVersionMatch") ?? "";
  if (match !== "") return match === "Exact";
  const rv = queryParam(url, "resourceVersion") ?? "";
  return rv !== "" && rv !== "0" && Boolean(queryParam(url, "limit")) &&
    !queryParam(url, "continue");
}

/**
 * Why a LIST cannot be served on `clusters` (the app is told 410 and lists
 * again with `""`), or undefined: an Exact read needs a version for every
 * cluster, and only a composite MCA issued has them.
 */
export function listRefusal(
  url: string,
  clusters: string[],
): string | undefined {
  if (!isExactRead(url)) return undefined;
  const requested = requestedVersions(url);
  if (typeof requested !== "object") {
    return "mca: the resourceVersion was not issued by mca for this set of clusters; list again";
  }
  const lacking = clusters.filter((c) => requested[c] === undefined);
  return lacking.length > 0
    ? `mca: the resourceVersion has no version of cluster ${
      lacking.join(", ")
    }; list again`
    : undefined;
}

/**
 * What fixes one cluster's version in the snapshot of a paged LIST's first
 * page: the app's own entry when the read is Exact (no call), else the
 * query of a `limit=1` LIST whose answer's version is the snapshot (not
 * older than the app's entry, or the most recent state).
 */
export function snapshotQuery(
  url: string,
  cluster: string,
): { version: string } | { params: Record<string, string | undefined> } {
  const requested = requestedVersions(url);
  const own = typeof requested === "object" ? requested[cluster] : undefined;
  if (own !== undefined && isExactRead(url)) return { version: own };
  return {
    params: {
      limit: "1",
      continue: undefined,
      resourceVersion: own,
      resourceVersionMatch: own !== undefined ? "NotOlderThan" : undefined,
    },
  };
}
