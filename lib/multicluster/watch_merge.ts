/**
 * The decisions of a merged WATCH, one event at a time.
 *
 * Every event is marked with its cluster and carries the running vector
 * (each cluster's last delivered version), so that a client resuming from
 * any event misses nothing. A BOOKMARK is passed on only once every cluster
 * has a version (an earlier one could not be resumed from). With
 * `sendInitialEvents=true` each cluster's `initial-events-end` bookmark is
 * held back and one is sent, with every cluster's snapshot version, once
 * all have sent theirs. When one cluster's stream ends, that cluster is
 * watched again from its own last version ({@link resumeParams}); an ERROR
 * event (e.g. `410 Gone`) ends the merged watch. A resourceVersion that does
 * not cover the clusters is answered with `410 Gone`, which makes informers
 * relist.
 *
 * Pure: the state is a plain object the stream loop hands in; the caller
 * does the I/O.
 *
 * @module
 */

import {
  encodeResourceVersion,
  type VersionVector,
} from "../kube/resource_version.ts";
import { failureStatus } from "../kube/status.ts";
import { decorateObjects } from "./rewrite.ts";
import {
  type NamespaceMap,
  queryParam,
  type RequestedVersions,
  versionFor,
} from "./fanout_request.ts";
import { mapBack } from "./answer_rewrite.ts";

type Json = Record<string, unknown>;

/** The annotation of the bookmark that ends a watch-list's initial events. */
export const INITIAL_EVENTS_END = "k8s.io/initial-events-end";

/**
 * Why a watch from `requested` cannot be served for `clusters` (the app is
 * told 410 and relists), or undefined when it can. On a `partial` rule a
 * LIST may have left a cluster out: a watch from its version starts that
 * cluster from now (best effort, as the list was).
 */
export function watchRefusal(
  requested: RequestedVersions,
  clusters: string[],
  options: { partial?: boolean } = {},
): string | undefined {
  if (requested === "invalid") {
    return "the resourceVersion was not issued by mca for this set of clusters";
  }
  if (
    typeof requested === "object" && !options.partial &&
    clusters.some((c) => requested[c] === undefined)
  ) {
    return "the set of clusters changed since this resourceVersion; list again";
  }
  return undefined;
}

/** The one event of a refused watch: as kube-apiserver sends, an ERROR carrying a 410 Status. */
export function goneEvent(message: string): Json {
  return {
    type: "ERROR",
    object: failureStatus(410, "Expired", `mca: ${message}`),
  };
}

/** What a merged watch knows while it runs. */
export interface WatchState {
  /** The latest version of each cluster so far (updated by {@link mergeEvent}). */
  vector: VersionVector;
  /** The clusters watched. */
  clusters: string[];
  namespace?: NamespaceMap;
  /** Watch-list: the clusters whose `initial-events-end` has not come yet. */
  initial?: Set<string>;
  /** `namespace/name` → the cluster whose events first carried it. */
  owners?: Map<string, string>;
  /** Events of a name another cluster's events carry (counted by the metrics). */
  collisions?: number;
}

/** The state a merged watch starts from: the versions the app resumes from, if any. */
export function watchState(
  requested: RequestedVersions,
  options: { clusters: string[]; namespace?: NamespaceMap; url?: string },
): WatchState {
  const listing = options.url !== undefined &&
    queryParam(options.url, "sendInitialEvents") === "true";
  return {
    vector: typeof requested === "object" ? { ...requested } : {},
    clusters: options.clusters,
    namespace: options.namespace,
    ...(listing ? { initial: new Set(options.clusters) } : {}),
  };
}

/** What to do with one line of a cluster's watch stream. */
export type WatchStep =
  /** Not JSON, or a bookmark that cannot be resumed from yet: nothing. */
  | { kind: "skip" }
  /** Write this (rewritten) event and go on. */
  | { kind: "write"; event: Json }
  /** Write this ERROR event, then end the merged watch. */
  | { kind: "end"; event: Json }
  /** The cluster is not able to serve now (a 5xx/429 ERROR): watch it again. */
  | { kind: "retry" };

/** True for a status that says "not now" rather than "never" (try again). */
export function isTransient(code: number): boolean {
  return code === 429 || code >= 500;
}

/**
 * One line of `cluster`'s stream, rewritten for the merged watch; records
 * the cluster's version in `state`. (Like the stream loop before it, a line
 * that is JSON but not an object throws; the loop treats that as the
 * cluster failing.)
 */
export function mergeEvent(
  state: WatchState,
  cluster: string,
  line: string | Json,
): WatchStep {
  let event: Json;
  try {
    // a protobuf event comes as its stub (lib/kube/protobuf_watch.ts)
    event = typeof line === "string" ? JSON.parse(line) : line;
  } catch {
    return { kind: "skip" };
  }
  const object = event.object as Json | undefined;
  if (event.type === "ERROR") {
    const code = Number(object?.code ?? 0);
    return isTransient(code) ? { kind: "retry" } : { kind: "end", event };
  }
  const meta = object?.metadata as Json | undefined;
  const rv = typeof meta?.resourceVersion === "string"
    ? meta.resourceVersion
    : undefined;
  mapBack(event, state.namespace);
  if (event.type === "BOOKMARK" && meta) {
    return bookmark(state, cluster, { event, meta });
  }
  if (state.initial?.has(cluster)) {
    // An initial event carries its object's version, not a point of the
    // cluster's history: stamped for writes, never resumed from.
    decorateObjects(event, cluster, {
      ...state.vector,
      ...(rv ? { [cluster]: rv } : {}),
    });
    return { kind: "write", event };
  }
  if (rv !== undefined) state.vector[cluster] = rv;
  noteOwner(state, cluster, event);
  decorateObjects(event, cluster, state.vector);
  return { kind: "write", event };
}

/**
 * Counts events of a name that another cluster's events carry: a client's
 * cache keeps one entry per namespace and name, which such events flip
 * from one cluster to the other (the way out: a watch per cluster with
 * `mca.io/cluster=NAME`).
 */
function noteOwner(state: WatchState, cluster: string, event: Json): void {
  const meta = (event.object as Json | undefined)?.metadata as Json | undefined;
  if (typeof meta?.name !== "string") return;
  const key = `${meta.namespace ?? ""}/${meta.name}`;
  state.owners ??= new Map();
  const owner = state.owners.get(key);
  if (owner === undefined) state.owners.set(key, cluster);
  else if (owner !== cluster) state.collisions = (state.collisions ?? 0) + 1;
  if (event.type === "DELETED" && (owner ?? cluster) === cluster) {
    state.owners.delete(key);
  }
}

/** A cluster's BOOKMARK: recorded; passed on once the whole vector can be resumed from. */
function bookmark(
  state: WatchState,
  cluster: string,
  seen: { event: Json; meta: Json },
): WatchStep {
  const { event, meta } = seen;
  const annotations = (meta.annotations ?? {}) as Record<string, unknown>;
  const ends = annotations[INITIAL_EVENTS_END] === "true";
  const initial = state.initial;
  if (typeof meta.resourceVersion === "string") {
    // a cluster's snapshot version comes with its own end of initial events
    if (!initial?.has(cluster) || ends) {
      state.vector[cluster] = meta.resourceVersion;
    }
  }
  if (ends) {
    if (!initial?.delete(cluster)) return { kind: "skip" }; // said already
    if (initial.size > 0) return { kind: "skip" };
  } else if (initial?.size) {
    return { kind: "skip" };
  }
  if (!complete(state)) return { kind: "skip" };
  meta.resourceVersion = encodeResourceVersion(state.vector);
  return { kind: "write", event };
}

function complete(state: WatchState): boolean {
  return state.clusters.every((c) => state.vector[c] !== undefined);
}

/**
 * The query of `cluster`'s next upstream watch: the app's own the first
 * time; when it comes back, from its own last version, without initial
 * events (they were sent), with what is left of `timeoutSeconds`.
 * Undefined when it cannot be resumed: it broke before the end of its
 * initial events, or the app's time is up.
 */
export function resumeParams(
  url: string,
  cluster: string,
  options: { state: WatchState; again: boolean; leftMs?: number },
): Record<string, string | undefined> | undefined {
  const { state, again, leftMs } = options;
  if (leftMs !== undefined && leftMs <= 0) return undefined;
  const timeout = leftMs !== undefined
    ? { timeoutSeconds: String(Math.max(1, Math.ceil(leftMs / 1000))) }
    : {};
  if (!again) {
    return { resourceVersion: versionFor(url, cluster), ...timeout };
  }
  if (state.initial?.has(cluster)) return undefined;
  const last = state.vector[cluster];
  return {
    resourceVersion: last ?? versionFor(url, cluster),
    resourceVersionMatch: last !== undefined ? undefined : queryParam(
      url,
      "resourceVersionMatch",
    ),
    sendInitialEvents: undefined,
    ...timeout,
  };
}

/** A re-opened watch refused with `status`: the ERROR event the app gets. */
export function refusalEvent(status: number, body: unknown): Json {
  const object = body !== null && typeof body === "object" &&
      (body as Json).kind === "Status"
    ? body as Json
    : failureStatus(status, "Unknown", `mca: a cluster answered ${status}`);
  return { type: "ERROR", object };
}
