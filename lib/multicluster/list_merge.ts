/**
 * Merging the LIST answers of several clusters into the one list an SDK
 * expects from one API server.
 *
 * - Unpaged: items (or Table rows) are concatenated in cluster order, each
 *   marked with its cluster; the list's resourceVersion is the composite of
 *   the clusters' versions. A refusal of any cluster is the answer. A
 *   cluster that cannot answer makes the list a 503: an informer takes a
 *   smaller 200 for deletions. Only a rule with `partial: true` gets the
 *   clusters that answered, with a `Warning` naming the others.
 * - Paged (`limit`/`continue`): the clusters are walked in order behind one
 *   composite continue token that carries the cluster being paged, its own
 *   token and the snapshot vector the first page fixed. Every page carries
 *   that whole vector (client-go's pager keeps the first page's version and
 *   watches from it), and each later cluster is read at exactly its entry.
 *
 * Pure: parsed JSON in, parsed JSON out (inputs are rewritten in place); the
 * callers do the I/O.
 *
 * @module
 */

import {
  type ContinueState,
  decodeContinue,
  encodeContinue,
  encodeResourceVersion,
  type VersionVector,
} from "../kube/resource_version.ts";
import { decorateObjects } from "./rewrite.ts";
import { type NamespaceMap, queryParam, versionFor } from "./fanout_request.ts";
import { mapBack, warning } from "./answer_rewrite.ts";

type Json = Record<string, unknown>;

/** One cluster's answer to a LIST; status 0 when it could not be reached. */
export interface ListAnswer {
  name: string;
  status: number;
  body: Json | undefined;
}

/** What the app is answered after a merged LIST. */
export type MergedList =
  /** A cluster refused: its answer is passed on as it is. */
  | { kind: "refused"; status: number; body: Json | undefined }
  /** A cluster (or, with `partial`, every cluster) could not answer: a 503 with this message. */
  | { kind: "none"; message: string }
  /** The merged list, with a `Warning` when clusters are left out. */
  | { kind: "merged"; body: Json; warning?: string; collisions?: number };

/**
 * True when a LIST is paged, so the clusters are walked one after the
 * other. `limit` with `resourceVersion=0` is not paging: kube-apiserver's
 * watch cache answers such a LIST whole, and client-go's reflector (whose
 * first LIST it is) relists without `limit` only when that first answer
 * came whole; a paged one makes every relist an Exact read of its last
 * version, which a restarted API server can no longer watch from.
 */
export function isPaged(method: string | undefined, url: string): boolean {
  if (method !== "GET") return false;
  if (queryParam(url, "continue")) return true;
  return Boolean(queryParam(url, "limit")) &&
    queryParam(url, "resourceVersion") !== "0";
}

/**
 * Merges the answers of every cluster (in cluster order). `missing` are the
 * clusters of the set known to be down before the call; `partial` lets the
 * list leave them (and any that failed) out.
 */
export function mergeListAnswers(
  answers: ListAnswer[],
  options: {
    missing: string[];
    namespace?: NamespaceMap;
    partial?: boolean;
    /** Kept out by the call policy: always left out, named in the `Warning`. */
    denied?: string[];
  },
): MergedList {
  const failed = answers.find((a) => a.status >= 300);
  if (failed) {
    return { kind: "refused", status: failed.status, body: failed.body };
  }
  const ok = answers.filter((a) => a.status > 0 && a.body !== undefined);
  const missing = [
    ...options.missing,
    ...answers.filter((a) => a.status === 0).map((a) => a.name),
  ];
  if (ok.length === 0) {
    return {
      kind: "none",
      message: `mca: no cluster of ${missing.join(", ")} answered`,
    };
  }
  if (missing.length > 0 && !options.partial) {
    return { kind: "none", message: incompleteMessage(missing) };
  }
  const body = mergeBodies(
    ok.map((a) => ({ name: a.name, body: a.body as Json })),
    options.namespace,
  );
  const denied = options.denied ?? [];
  const shared = sharedNames(body);
  const warnings = [
    ...(missing.length + denied.length > 0 ? [warning(missing, denied)] : []),
    ...(shared.length > 0 ? [sharedWarning(shared)] : []),
  ];
  return {
    kind: "merged",
    body,
    ...(warnings.length > 0 ? { warning: warnings.join(", ") } : {}),
    ...(shared.length > 0 ? { collisions: shared.length } : {}),
  };
}

/**
 * `namespace/name` keys held by more than one cluster of a merged list:
 * a client's cache keeps one entry per key, which would flip between the
 * clusters with each event.
 */
export function sharedNames(list: Json): string[] {
  const seen = new Set<string>();
  const shared = new Set<string>();
  const key = list.kind === "Table" ? "rows" : "items";
  for (const item of Array.isArray(list[key]) ? list[key] as unknown[] : []) {
    const object = key === "rows" ? (item as Json)?.object : item;
    const meta = (object as Json | undefined)?.metadata as Json | undefined;
    if (typeof meta?.name !== "string") continue;
    const id = `${meta.namespace ?? ""}/${meta.name}`;
    if (seen.has(id)) shared.add(id);
    seen.add(id);
  }
  return [...shared];
}

/** The `Warning` naming the keys several clusters hold (the first few). */
function sharedWarning(keys: string[]): string {
  const named = keys.slice(0, 3).map((k) => k.replace(/^\//, "")).join(", ");
  const more = keys.length > 3 ? ` and ${keys.length - 3} more` : "";
  return `299 - "mca: ${named}${more} exist in more than one cluster of the set; a cache keyed by namespace and name keeps one of each (list per cluster with the label selector mca.io/cluster=NAME)"`;
}

/** Why a merged list is a 503 rather than a list without `missing`'s objects. */
export function incompleteMessage(missing: string[]): string {
  const which = missing.length === 1
    ? `cluster ${missing[0]}`
    : `clusters ${missing.join(", ")}`;
  return `mca: ${which} cannot answer; a list without ${
    missing.length === 1 ? "its" : "their"
  } objects would be incomplete`;
}

/**
 * The first body, carrying the items of all (each rewritten for the app)
 * and the composite version; a cluster's own paging fields are dropped.
 */
function mergeBodies(
  bodies: Array<{ name: string; body: Json }>,
  namespace: NamespaceMap | undefined,
): Json {
  const merged = bodies[0].body;
  const vector: VersionVector = {};
  const key = merged.kind === "Table" ? "rows" : "items";
  const all: unknown[] = [];
  for (const { name, body } of bodies) {
    mapBack(body, namespace);
    decorateObjects(body, name);
    all.push(...(Array.isArray(body[key]) ? body[key] as unknown[] : []));
    const meta = body.metadata as Json | undefined;
    if (typeof meta?.resourceVersion === "string") {
      vector[name] = meta.resourceVersion;
    }
  }
  merged[key] = all;
  const metadata: Json = {
    ...(merged.metadata as Json ?? {}),
    resourceVersion: encodeResourceVersion(vector),
  };
  delete metadata.continue;
  delete metadata.remainingItemCount;
  merged.metadata = metadata;
  return merged;
}

/**
 * Where a paged LIST stands: from the app's continue token, or the first
 * cluster's top when there is none. Undefined when the token is not MCA's
 * or names a cluster no longer in the set (the app lists again, 410).
 */
export function pageState(
  token: string | undefined,
  clusters: string[],
): ContinueState | undefined {
  const state = token
    ? decodeContinue(token)
    : { cluster: clusters[0], continue: "", versions: {} };
  return state && clusters.includes(state.cluster) ? state : undefined;
}

/**
 * The query parameters of the page's upstream request: the cluster's own
 * token; at the top of a cluster whose snapshot version is known (every
 * cluster but the first), exactly that version, so that its items are the
 * state the first page's vector names; else (the first page) the version
 * the app asked for it.
 */
export function pageParams(
  url: string,
  state: ContinueState,
): Record<string, string | undefined> {
  if (state.continue !== "") {
    return {
      continue: state.continue,
      resourceVersion: undefined,
      resourceVersionMatch: undefined,
    };
  }
  const pinned = state.versions[state.cluster];
  return pinned
    ? { continue: "", resourceVersion: pinned, resourceVersionMatch: "Exact" }
    : { continue: "", resourceVersion: versionFor(url, state.cluster) };
}

/**
 * One cluster's page rewritten for the app, in place: objects marked, the
 * composite of the whole snapshot (`state.versions`, which the first page
 * fills with every other cluster's version; the page's own version fills in
 * the first cluster's), and a continue token to the rest of this cluster or
 * to the next cluster (none after the last).
 */
export function finishPage(
  body: Json,
  options: {
    state: ContinueState;
    clusters: string[];
    namespace?: NamespaceMap;
  },
): Json {
  const { state, clusters } = options;
  mapBack(body, options.namespace);
  decorateObjects(body, state.cluster);
  const meta = (body.metadata ?? {}) as Json;
  const versions = { ...state.versions };
  if (
    typeof meta.resourceVersion === "string" &&
    versions[state.cluster] === undefined
  ) {
    versions[state.cluster] = meta.resourceVersion;
  }
  const next = nextPage(state.cluster, {
    own: meta.continue,
    versions,
    clusters,
  });
  const metadata: Json = {
    ...meta,
    resourceVersion: encodeResourceVersion(versions),
  };
  delete metadata.remainingItemCount;
  if (next) metadata.continue = encodeContinue(next);
  else delete metadata.continue;
  body.metadata = metadata;
  return body;
}

/** The rest of this cluster if it said there is more, else the next cluster's top. */
function nextPage(
  cluster: string,
  options: { own: unknown; versions: VersionVector; clusters: string[] },
): ContinueState | undefined {
  const { own, versions, clusters } = options;
  if (typeof own === "string" && own !== "") {
    return { cluster, continue: own, versions };
  }
  const after = clusters.indexOf(cluster) + 1;
  return after < clusters.length
    ? { cluster: clusters[after], continue: "", versions }
    : undefined;
}
