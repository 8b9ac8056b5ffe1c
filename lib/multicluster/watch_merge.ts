/**
 * The decisions of a merged WATCH, one event at a time.
 *
 * Every event is marked with its cluster and carries the composite version
 * of all clusters so far, so that a client resuming from any event misses
 * nothing. A BOOKMARK is passed on only once every cluster has a version (an
 * earlier one could not be resumed from). An ERROR event (e.g. `410 Gone`)
 * ends the merged watch. A resourceVersion that does not cover the current
 * clusters is answered with `410 Gone`, which makes informers relist.
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
import type { NamespaceMap, RequestedVersions } from "./fanout_request.ts";
import { mapBack } from "./answer_rewrite.ts";

type Json = Record<string, unknown>;

/**
 * Why a watch from `requested` cannot be served for `clusters` (the app is
 * told 410 and relists), or undefined when it can.
 */
export function watchRefusal(
  requested: RequestedVersions,
  clusters: string[],
): string | undefined {
  if (requested === "invalid") {
    return "the resourceVersion was not issued by mca for this set of clusters";
  }
  if (
    typeof requested === "object" &&
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
  /** How many clusters are watched. */
  clusters: number;
  namespace?: NamespaceMap;
}

/** The state a merged watch starts from: the versions the app resumes from, if any. */
export function watchState(
  requested: RequestedVersions,
  options: { clusters: number; namespace?: NamespaceMap },
): WatchState {
  return {
    vector: typeof requested === "object" ? { ...requested } : {},
    clusters: options.clusters,
    namespace: options.namespace,
  };
}

/** What to do with one line of a cluster's watch stream. */
export type WatchStep =
  /** Not JSON, or a bookmark that cannot be resumed from yet: nothing. */
  | { kind: "skip" }
  /** Write this (rewritten) event and go on. */
  | { kind: "write"; event: Json }
  /** Write this ERROR event, then end the merged watch. */
  | { kind: "end"; event: Json };

/**
 * One line of `cluster`'s stream, rewritten for the merged watch; records
 * the cluster's version in `state`. (Like the stream loop before it, a line
 * that is JSON but not an object throws; the loop treats that as the
 * cluster failing.)
 */
export function mergeEvent(
  state: WatchState,
  cluster: string,
  line: string,
): WatchStep {
  let event: Json;
  try {
    event = JSON.parse(line);
  } catch {
    return { kind: "skip" };
  }
  const object = event.object as Json | undefined;
  if (event.type === "ERROR") return { kind: "end", event };
  const meta = object?.metadata as Json | undefined;
  if (typeof meta?.resourceVersion === "string") {
    state.vector[cluster] = meta.resourceVersion;
  }
  mapBack(event, state.namespace);
  if (event.type === "BOOKMARK" && meta) {
    if (Object.keys(state.vector).length !== state.clusters) {
      return { kind: "skip" };
    }
    meta.resourceVersion = encodeResourceVersion(state.vector);
    return { kind: "write", event };
  }
  decorateObjects(event, cluster, state.vector);
  return { kind: "write", event };
}
