/**
 * What MCA changes inside requests and answers when it routes across
 * clusters: namespaces (a rule may map the app's namespace `a` to `b` on the
 * target cluster, and the app must never see `b`), the `mca.io/cluster`
 * annotation that says where an object lives, and composite
 * resourceVersions on objects served from a spread set of clusters.
 *
 * Pure functions on parsed JSON; the transport decides when to buffer.
 *
 * @module
 */

import {
  decodeResourceVersion,
  encodeResourceVersion,
} from "../kube/resource_version.ts";

/** The annotation naming the cluster an object came from. */
export const CLUSTER_ANNOTATION = "mca.io/cluster";

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Rewrites the namespace segment of a request target (path and query). */
export function rewriteTargetNamespace(
  target: string,
  from: string,
  to: string,
): string {
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  let query = q < 0 ? "" : target.slice(q);
  const parts = path.split("/");
  const i = parts.indexOf("namespaces");
  if (i >= 0 && parts[i + 1] === from) parts[i + 1] = to;
  if (query !== "") {
    const params = new URLSearchParams(query.slice(1));
    const field = params.get("fieldSelector");
    if (field !== null) {
      params.set(
        "fieldSelector",
        field.split(",").map((term) =>
          term.trim() === `metadata.namespace=${from}` ||
            term.trim() === `metadata.namespace==${from}`
            ? `metadata.namespace=${to}`
            : term
        ).join(","),
      );
      query = "?" + params.toString();
    }
  }
  return parts.join("/") + query;
}

/** The metadata objects of a single object, a list, a Table or a watch event. */
function metadataOf(body: unknown): Json[] {
  if (!isObject(body)) return [];
  if (typeof body.type === "string" && isObject(body.object)) {
    return metadataOf(body.object); // a watch event
  }
  const out: Json[] = [];
  if (Array.isArray(body.items)) {
    for (const item of body.items) {
      if (isObject(item) && isObject(item.metadata)) out.push(item.metadata);
    }
  } else if (body.kind === "Table" && Array.isArray(body.rows)) {
    for (const row of body.rows) {
      if (
        isObject(row) && isObject(row.object) && isObject(row.object.metadata)
      ) {
        out.push(row.object.metadata);
      }
    }
  } else if (isObject(body.metadata) && body.kind !== "Status") {
    out.push(body.metadata);
  }
  return out;
}

/** Replaces namespace `from` by `to` in every object of a body, in place. */
export function rewriteBodyNamespace(
  body: unknown,
  from: string,
  to: string,
): void {
  for (const meta of metadataOf(body)) {
    if (meta.namespace === from) meta.namespace = to;
  }
}

/**
 * Marks every object of a body (object, list, Table, watch event) with the
 * cluster it came from and gives it a composite resourceVersion, in place.
 * `versions`, when given, is the full vector to stamp (watch events, so a
 * client can resume the merged watch from any event).
 */
export function decorateObjects(
  body: unknown,
  cluster: string,
  versions?: Record<string, string>,
): void {
  for (const meta of metadataOf(body)) {
    const annotations = isObject(meta.annotations) ? meta.annotations : {};
    annotations[CLUSTER_ANNOTATION] = cluster;
    meta.annotations = annotations;
    if (
      typeof meta.resourceVersion === "string" && meta.resourceVersion !== ""
    ) {
      meta.resourceVersion = encodeResourceVersion(
        versions ?? { [cluster]: meta.resourceVersion },
      );
    }
  }
}

/**
 * Undoes {@link decorateObjects} on an object sent back by the app (update,
 * apply): returns the cluster it belongs to, if it says, and restores that
 * cluster's own resourceVersion and annotations, in place.
 */
export function undecorateObject(body: unknown): string | undefined {
  if (isObject(body) && isObject(body.preconditions)) {
    return undecoratePreconditions(body.preconditions);
  }
  if (!isObject(body) || !isObject(body.metadata)) return undefined;
  const meta = body.metadata;
  let cluster: string | undefined;
  if (isObject(meta.annotations)) {
    const value = meta.annotations[CLUSTER_ANNOTATION];
    if (typeof value === "string") cluster = value;
    delete meta.annotations[CLUSTER_ANNOTATION];
    if (Object.keys(meta.annotations).length === 0) delete meta.annotations;
  }
  if (typeof meta.resourceVersion === "string") {
    const vector = decodeResourceVersion(meta.resourceVersion);
    if (vector) {
      const clusters = Object.keys(vector);
      cluster ??= clusters.length === 1 ? clusters[0] : undefined;
      if (cluster !== undefined && vector[cluster] !== undefined) {
        meta.resourceVersion = vector[cluster];
      } else {
        delete meta.resourceVersion;
      }
    }
  }
  return cluster;
}

/**
 * A delete's `preconditions.resourceVersion` as mca gave it (`{east: N}`)
 * names the cluster whose object is meant, which is how a delete picks one
 * of two objects of the same name; the cluster's own version is restored.
 */
function undecoratePreconditions(preconditions: Json): string | undefined {
  if (typeof preconditions.resourceVersion !== "string") return undefined;
  const vector = decodeResourceVersion(preconditions.resourceVersion);
  const clusters = vector ? Object.keys(vector) : [];
  if (!vector || clusters.length !== 1) return undefined;
  preconditions.resourceVersion = vector[clusters[0]];
  return clusters[0];
}

/** The object labels of a create/update body, for label-matching rules. */
export function objectLabels(body: unknown): Record<string, string> {
  if (!isObject(body) || !isObject(body.metadata)) return {};
  const labels = body.metadata.labels;
  if (!isObject(labels)) return {};
  return Object.fromEntries(
    Object.entries(labels).filter(([, v]) => typeof v === "string"),
  ) as Record<string, string>;
}
