import assert from "node:assert/strict";
import {
  goneEvent,
  INITIAL_EVENTS_END,
  mergeEvent,
  resumeParams,
  watchRefusal,
  watchState,
} from "../../lib/multicluster/watch_merge.ts";
import { decodeResourceVersion } from "../../lib/kube/resource_version.ts";

type Json = Record<string, unknown>;

function line(type: string, name: string, rv?: string, ns = "b"): string {
  return JSON.stringify({
    type,
    object: {
      kind: "ConfigMap",
      metadata: { name, namespace: ns, ...(rv ? { resourceVersion: rv } : {}) },
    },
  });
}

function metaOf(step: { event?: Json }): Json {
  return (step.event!.object as Json).metadata as Json;
}

Deno.test("watch merge: an event from cluster B is marked and carries both versions", () => {
  const state = watchState({ east: "5", west: "2" }, {
    clusters: ["east", "west"],
    namespace: { app: "a", remote: "b" },
  });
  const step = mergeEvent(state, "west", line("MODIFIED", "w", "3"));
  assert.equal(step.kind, "write");
  const meta = metaOf(step as { event: Json });
  assert.equal(meta.namespace, "a", "the app's namespace");
  assert.equal(
    (meta.annotations as Record<string, string>)["mca.io/cluster"],
    "west",
  );
  assert.deepEqual(decodeResourceVersion(meta.resourceVersion as string), {
    east: "5",
    west: "3",
  });
  assert.deepEqual(state.vector, { east: "5", west: "3" });
});

Deno.test("watch merge: events interleave, each with the versions so far", () => {
  const state = watchState("any", { clusters: ["east", "west"] });
  const a = mergeEvent(state, "east", line("ADDED", "a", "7"));
  const b = mergeEvent(state, "west", line("ADDED", "b", "3"));
  const c = mergeEvent(state, "east", line("DELETED", "a", "8"));
  const versions = [a, b, c].map((s) =>
    decodeResourceVersion(
      metaOf(s as { event: Json }).resourceVersion as string,
    )
  );
  assert.deepEqual(versions, [
    { east: "7" },
    { east: "7", west: "3" },
    { east: "8", west: "3" },
  ]);
  assert.equal(metaOf(a as { event: Json }).namespace, "b", "no mapping");
});

Deno.test("watch merge: a bookmark waits until every cluster has a version", () => {
  const state = watchState("any", { clusters: ["east", "west"] });
  assert.deepEqual(
    mergeEvent(state, "east", line("BOOKMARK", "", "10")),
    { kind: "skip" },
  );
  const step = mergeEvent(state, "west", line("BOOKMARK", "", "20"));
  assert.equal(step.kind, "write");
  const meta = metaOf(step as { event: Json });
  assert.deepEqual(decodeResourceVersion(meta.resourceVersion as string), {
    east: "10",
    west: "20",
  });
  assert.equal(meta.annotations, undefined, "a bookmark is not marked");
});

Deno.test("watch merge: an ERROR event ends the watch as it is; junk is skipped", () => {
  const state = watchState("any", { clusters: ["east", "west"] });
  const error = { type: "ERROR", object: { kind: "Status", code: 410 } };
  assert.deepEqual(mergeEvent(state, "east", JSON.stringify(error)), {
    kind: "end",
    event: error,
  });
  for (const code of [500, 504, 429]) {
    assert.deepEqual(
      mergeEvent(
        state,
        "east",
        JSON.stringify({ type: "ERROR", object: { kind: "Status", code } }),
      ),
      { kind: "retry" },
      `${code}: the cluster cannot serve now, it is watched again`,
    );
  }
  assert.deepEqual(mergeEvent(state, "east", "not json"), { kind: "skip" });
  assert.deepEqual(state.vector, {});
});

Deno.test("watch merge: a version not covering the clusters is refused with 410", () => {
  assert.equal(watchRefusal("any", ["east", "west"]), undefined);
  assert.equal(
    watchRefusal({ east: "1", west: "2" }, ["east", "west"]),
    undefined,
  );
  assert.match(watchRefusal("invalid", ["east"]) ?? "", /not issued by mca/);
  assert.match(
    watchRefusal({ east: "1" }, ["east", "west"]) ?? "",
    /set of clusters changed/,
  );
  assert.equal(
    watchRefusal({ east: "1" }, ["east", "west"], { partial: true }),
    undefined,
    "a partial rule starts the left-out cluster from now",
  );
  const gone = goneEvent("why");
  assert.equal(gone.type, "ERROR");
  assert.equal((gone.object as Json).code, 410);
  assert.equal((gone.object as Json).reason, "Expired");
  assert.equal((gone.object as Json).message, "mca: why");
});

Deno.test("watch merge: the state starts from the versions resumed from, as a copy", () => {
  const requested = { east: "1", west: "2" };
  const state = watchState(requested, { clusters: ["east", "west"] });
  mergeEvent(state, "east", line("ADDED", "x", "9"));
  assert.deepEqual(requested, { east: "1", west: "2" }, "not changed");
  assert.deepEqual(watchState("invalid", { clusters: ["east"] }).vector, {});
});

function endBookmark(rv: string): string {
  return JSON.stringify({
    type: "BOOKMARK",
    object: {
      kind: "ConfigMap",
      metadata: {
        resourceVersion: rv,
        annotations: { [INITIAL_EVENTS_END]: "true" },
      },
    },
  });
}

Deno.test("watch merge: watch-list sends one initial-events-end, after every cluster's, with their snapshot versions", () => {
  const state = watchState("any", {
    clusters: ["east", "west"],
    url:
      "/api/v1/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true",
  });
  const added = mergeEvent(state, "east", line("ADDED", "a", "5"));
  assert.deepEqual(
    decodeResourceVersion(
      metaOf(added as { event: Json }).resourceVersion as string,
    ),
    { east: "5" },
    "an initial event carries its object's version for its cluster",
  );
  assert.deepEqual(state.vector, {}, "but it is no point to resume from");
  assert.deepEqual(mergeEvent(state, "east", endBookmark("10")), {
    kind: "skip",
  });
  assert.deepEqual(state.vector, { east: "10" }, "east's snapshot version");
  assert.equal(
    mergeEvent(state, "west", line("ADDED", "b", "3")).kind,
    "write",
  );
  assert.deepEqual(
    mergeEvent(state, "west", line("BOOKMARK", "", "19")),
    { kind: "skip" },
    "no ordinary bookmark before the initial events ended",
  );
  const end = mergeEvent(state, "west", endBookmark("20"));
  assert.equal(end.kind, "write");
  const meta = metaOf(end as { event: Json });
  assert.deepEqual(decodeResourceVersion(meta.resourceVersion as string), {
    east: "10",
    west: "20",
  });
  assert.equal((meta.annotations as Json)[INITIAL_EVENTS_END], "true");
  assert.deepEqual(
    mergeEvent(state, "east", endBookmark("11")),
    { kind: "skip" },
    "exactly one",
  );
  const after = mergeEvent(state, "east", line("MODIFIED", "a", "12"));
  assert.deepEqual(
    decodeResourceVersion(
      metaOf(after as { event: Json }).resourceVersion as string,
    ),
    { east: "12", west: "20" },
  );
});

Deno.test("watch merge: a cluster comes back from its own last version, without initial events", () => {
  const url =
    "/api/v1/configmaps?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true";
  const state = watchState("any", { clusters: ["east", "west"], url });
  assert.deepEqual(resumeParams(url, "east", { state, again: false }), {
    resourceVersion: undefined,
  }, "the first time: the app's own query");
  assert.equal(
    resumeParams(url, "east", { state, again: true }),
    undefined,
    "broke before its initial events ended: cannot be resumed",
  );
  mergeEvent(state, "east", endBookmark("10"));
  mergeEvent(state, "east", line("MODIFIED", "a", "12"));
  assert.deepEqual(
    resumeParams(url, "east", { state, again: true, leftMs: 1500 }),
    {
      resourceVersion: "12",
      resourceVersionMatch: undefined,
      sendInitialEvents: undefined,
      timeoutSeconds: "2",
    },
  );
  assert.equal(
    resumeParams(url, "east", { state, again: true, leftMs: 0 }),
    undefined,
    "the app's time is up",
  );
  const plain = watchState({ east: "4", west: "9" }, {
    clusters: ["east", "west"],
  });
  assert.equal(
    resumeParams("/w?watch=1", "west", { state: plain, again: true })
      ?.resourceVersion,
    "9",
  );
});

Deno.test("watch merge: events of one name from two clusters are counted, a name passed on after its delete is not", () => {
  const state = watchState({ east: "5", west: "2" }, {
    clusters: ["east", "west"],
  });
  mergeEvent(state, "east", line("ADDED", "shared", "6"));
  mergeEvent(state, "west", line("MODIFIED", "shared", "3"));
  mergeEvent(state, "west", line("MODIFIED", "shared", "4"));
  assert.equal(state.collisions, 2, "each event that would flip the entry");
  mergeEvent(state, "east", line("ADDED", "mine", "7"));
  mergeEvent(state, "east", line("DELETED", "mine", "8"));
  mergeEvent(state, "west", line("ADDED", "mine", "5"));
  assert.equal(
    state.collisions,
    2,
    "a name deleted in east, then made in west",
  );
});
