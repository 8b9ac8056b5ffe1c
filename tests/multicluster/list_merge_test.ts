import assert from "node:assert/strict";
import fc from "fast-check";
import { propertyRuns } from "../support/property.ts";
import {
  finishPage,
  isPaged,
  type ListAnswer,
  mergeListAnswers,
  pageParams,
  pageState,
} from "../../lib/multicluster/list_merge.ts";
import {
  decodeContinue,
  decodeResourceVersion,
  encodeContinue,
  encodeResourceVersion,
} from "../../lib/kube/resource_version.ts";

type Json = Record<string, unknown>;

function list(
  rv: string,
  items: Array<{ name: string; namespace?: string }>,
  extra: Json = {},
): Json {
  return {
    kind: "ConfigMapList",
    apiVersion: "v1",
    metadata: { resourceVersion: rv, ...extra },
    items: items.map((m) => ({
      metadata: { ...m, resourceVersion: rv },
    })),
  };
}

function merged(
  answers: ListAnswer[],
  missing: string[] = [],
  partial = false,
) {
  const out = mergeListAnswers(answers, {
    missing,
    namespace: { app: "a", remote: "b" },
    partial,
  });
  assert.equal(out.kind, "merged", JSON.stringify(out));
  return out as { kind: "merged"; body: Json; warning?: string };
}

function metas(body: Json): Json[] {
  return (body.items as Array<{ metadata: Json }>).map((i) => i.metadata);
}

Deno.test("list merge: two clusters' items in cluster order, marked, namespace mapped back", () => {
  const out = merged([
    {
      name: "east",
      status: 200,
      body: list("100", [{ name: "e1", namespace: "b" }, { name: "e2" }], {
        continue: "more",
        remainingItemCount: 3,
      }),
    },
    { name: "west", status: 200, body: list("7", [{ name: "w1" }]) },
  ]);
  assert.equal(out.warning, undefined);
  assert.deepEqual(metas(out.body).map((m) => m.name), ["e1", "e2", "w1"]);
  assert.deepEqual(
    metas(out.body).map((m) =>
      (m.annotations as Record<string, string>)["mca.io/cluster"]
    ),
    ["east", "east", "west"],
  );
  assert.equal(metas(out.body)[0].namespace, "a", "the app's namespace");
  assert.deepEqual(
    decodeResourceVersion(metas(out.body)[2].resourceVersion as string),
    { west: "7" },
  );
  const meta = out.body.metadata as Json;
  assert.deepEqual(decodeResourceVersion(meta.resourceVersion as string), {
    east: "100",
    west: "7",
  });
  assert.equal(meta.continue, undefined, "a cluster's own token is dropped");
  assert.equal(meta.remainingItemCount, undefined);
  assert.equal(out.body.kind, "ConfigMapList");
});

Deno.test("list merge: Table rows are merged like items", () => {
  const table = (rv: string, name: string): Json => ({
    kind: "Table",
    metadata: { resourceVersion: rv },
    rows: [{ cells: [name], object: { metadata: { name } } }],
  });
  const out = merged([
    { name: "east", status: 200, body: table("1", "e") },
    { name: "west", status: 200, body: table("2", "w") },
  ]);
  const rows = out.body.rows as Array<{ cells: string[] }>;
  assert.deepEqual(rows.map((r) => r.cells[0]), ["e", "w"]);
  assert.equal(out.body.items, undefined);
});

Deno.test("list merge: a cluster that cannot answer makes the list a 503, never a smaller 200", () => {
  const answers = (): ListAnswer[] => [
    { name: "east", status: 200, body: list("100", [{ name: "e1" }]) },
    { name: "west", status: 0, body: undefined },
  ];
  assert.deepEqual(mergeListAnswers(answers(), { missing: [] }), {
    kind: "none",
    message:
      "mca: cluster west cannot answer; a list without its objects would be incomplete",
  });
  assert.deepEqual(
    mergeListAnswers(
      [{ name: "east", status: 200, body: list("1", []) }],
      { missing: ["north"] },
    ),
    {
      kind: "none",
      message:
        "mca: cluster north cannot answer; a list without its objects would be incomplete",
    },
    "a cluster known to be down too",
  );
  assert.match(
    (mergeListAnswers(answers(), { missing: ["north"] }) as {
      message: string;
    }).message,
    /^mca: clusters north, west cannot answer; a list without their objects/,
  );
});

Deno.test("list merge: with partial, a missing cluster is left out and named in the Warning", () => {
  const out = merged(
    [
      { name: "east", status: 200, body: list("100", [{ name: "e1" }]) },
      { name: "west", status: 0, body: undefined },
    ],
    ["north"],
    true,
  );
  assert.deepEqual(metas(out.body).map((m) => m.name), ["e1"]);
  assert.match(out.warning ?? "", /^299 - "mca: cluster north is unavailable/);
  assert.match(out.warning ?? "", /, 299 - "mca: cluster west is unavailable/);
  assert.deepEqual(
    decodeResourceVersion(
      (out.body.metadata as Json).resourceVersion as string,
    ),
    { east: "100" },
  );
});

Deno.test("list merge: a refusal is the answer; no cluster at all is a 503 message", () => {
  const status = { kind: "Status", code: 403 };
  assert.deepEqual(
    mergeListAnswers([
      { name: "east", status: 200, body: list("1", []) },
      { name: "west", status: 403, body: status },
    ], { missing: [] }),
    { kind: "refused", status: 403, body: status },
  );
  assert.equal(
    mergeListAnswers([
      { name: "east", status: 200, body: list("1", []) },
      { name: "west", status: 301, body: undefined },
    ], { missing: [] }).kind,
    "refused",
    "anything but a 2xx is the answer",
  );
  assert.deepEqual(
    mergeListAnswers([
      { name: "east", status: 0, body: undefined },
      { name: "west", status: 0, body: undefined },
    ], { missing: ["north"] }),
    { kind: "none", message: "mca: no cluster of north, east, west answered" },
  );
});

Deno.test("list merge: only a GET with limit or continue is paged", () => {
  assert.ok(isPaged("GET", "/api/v1/pods?limit=10"));
  assert.ok(isPaged("GET", "/api/v1/pods?continue=x"));
  assert.ok(!isPaged("GET", "/api/v1/pods?limit="));
  assert.ok(!isPaged("GET", "/api/v1/pods"));
  assert.ok(!isPaged("DELETE", "/api/v1/pods?limit=10"));
  assert.ok(
    !isPaged("GET", "/api/v1/pods?limit=500&resourceVersion=0"),
    "client-go's first LIST is answered whole, as the watch cache does",
  );
  assert.ok(isPaged("GET", "/api/v1/pods?limit=500&resourceVersion="));
});

const CLUSTERS = ["east", "west"];

Deno.test("list merge: every page carries the first page's full snapshot; later clusters are pinned to it", () => {
  const start = pageState(undefined, CLUSTERS)!;
  assert.deepEqual(start, { cluster: "east", continue: "", versions: {} });
  assert.deepEqual(
    pageParams("/api/v1/pods?limit=1&resourceVersion=0", start),
    { continue: "", resourceVersion: "0" },
    "the first page reads at the app's version",
  );

  // the first page: east's page, west's snapshot (read beside it) is 7
  const first = finishPage(list("100", [{ name: "e1" }], { continue: "e-2" }), {
    state: { ...start, versions: { west: "7" } },
    clusters: CLUSTERS,
  });
  const meta1 = first.metadata as Json;
  const snapshot = { east: "100", west: "7" };
  assert.deepEqual(
    decodeResourceVersion(meta1.resourceVersion as string),
    snapshot,
    "the first page names every cluster (client-go keeps this one)",
  );
  const token1 = meta1.continue as string;
  assert.deepEqual(pageState(token1, CLUSTERS), {
    cluster: "east",
    continue: "e-2",
    versions: snapshot,
  }, "more of the same cluster");
  assert.deepEqual(pageParams("/x?limit=1", pageState(token1, CLUSTERS)!), {
    continue: "e-2",
    resourceVersion: undefined,
    resourceVersionMatch: undefined,
  });

  // east's next page: the same vector, even if east says a newer version
  const second = finishPage(list("101", [{ name: "e2" }]), {
    state: pageState(token1, CLUSTERS)!,
    clusters: CLUSTERS,
  });
  const meta2 = second.metadata as Json;
  assert.equal(meta2.resourceVersion, meta1.resourceVersion);
  const token2 = meta2.continue as string;
  assert.deepEqual(decodeContinue(token2), {
    cluster: "west",
    continue: "",
    versions: snapshot,
  }, "then the next cluster from its top");
  assert.deepEqual(
    pageParams("/x?limit=1", pageState(token2, CLUSTERS)!),
    { continue: "", resourceVersion: "7", resourceVersionMatch: "Exact" },
    "west is read at exactly its snapshot version",
  );

  const last = finishPage(
    list("7", [{ name: "w1", namespace: "b" }], { remainingItemCount: 0 }),
    {
      state: pageState(token2, CLUSTERS)!,
      clusters: CLUSTERS,
      namespace: { app: "a", remote: "b" },
    },
  );
  const meta3 = last.metadata as Json;
  assert.equal(meta3.continue, undefined, "none after the last cluster");
  assert.equal(meta3.remainingItemCount, undefined);
  assert.equal(meta3.resourceVersion, meta1.resourceVersion);
  assert.equal(metas(last)[0].namespace, "a");
  assert.equal(
    (metas(last)[0].annotations as Record<string, string>)["mca.io/cluster"],
    "west",
  );
});

Deno.test("list merge: a garbage or foreign continue token is refused", () => {
  for (const bad of ["garbage", "mca.", "mca.!!!", "mca.e30"]) {
    assert.equal(pageState(bad, CLUSTERS), undefined, bad);
  }
  const gone = encodeContinue({ cluster: "north", continue: "", versions: {} });
  assert.equal(pageState(gone, CLUSTERS), undefined, "cluster left the set");
  assert.equal(pageState(undefined, []), undefined, "no cluster to page");
});

Deno.test("list merge: a first page reads at the asked version, a later one at its token", () => {
  const rv = encodeResourceVersion({ east: "5", west: "9" });
  const url = `/api/v1/pods?limit=1&resourceVersion=${rv}`;
  assert.deepEqual(
    pageParams(url, { cluster: "west", continue: "", versions: {} }),
    { continue: "", resourceVersion: "9" },
  );
  assert.deepEqual(
    pageParams(url, { cluster: "west", continue: "t", versions: {} }),
    {
      continue: "t",
      resourceVersion: undefined,
      resourceVersionMatch: undefined,
    },
  );
});

Deno.test("list merge: property — a paged walk visits every cluster's pages in order, every page with the first page's vector, every later cluster pinned to it", () => {
  const name = fc.constantFrom("a", "b", "c", "d", "e");
  const cluster = fc.record({
    pages: fc.integer({ min: 1, max: 3 }),
    version: fc.integer({ min: 1, max: 1e6 }).map(String),
  });
  fc.assert(
    fc.property(
      fc.uniqueArray(name, { minLength: 1, maxLength: 4 }),
      fc.array(cluster, { minLength: 4, maxLength: 4 }),
      (names, shapes) => {
        const of = Object.fromEntries(names.map((n, i) => [n, shapes[i]]));
        const snapshot = Object.fromEntries(
          names.map((n) => [n, of[n].version]),
        );
        const visited: string[] = [];
        const versions = new Set<string>();
        let state = pageState(undefined, names)!;
        // the first page: the other clusters' snapshots were read beside it
        state = { ...state, versions: { ...snapshot } };
        delete state.versions[names[0]];
        for (let guard = 0; guard < 20; guard++) {
          const params = pageParams("/x?limit=1", state);
          const part = visited.filter((v) => v === state.cluster).length;
          if (part > 0) {
            assert.equal(params.continue, `${state.cluster}-${part}`);
          } else if (visited.length > 0) {
            assert.deepEqual(params, {
              continue: "",
              resourceVersion: snapshot[state.cluster],
              resourceVersionMatch: "Exact",
            });
          }
          visited.push(state.cluster);
          const more = part + 1 < of[state.cluster].pages;
          const page = finishPage(
            list(
              // a later page may say a newer version: the vector stays
              part === 0 ? snapshot[state.cluster] : `${part}0${guard}`,
              [{ name: `${state.cluster}${part}` }],
              more ? { continue: `${state.cluster}-${part + 1}` } : {},
            ),
            { state, clusters: names },
          );
          const meta = page.metadata as Json;
          versions.add(meta.resourceVersion as string);
          if (meta.continue === undefined) break;
          state = pageState(meta.continue as string, names)!;
        }
        assert.deepEqual(
          visited,
          names.flatMap((n) => Array(of[n].pages).fill(n)),
        );
        assert.deepEqual([...versions], [encodeResourceVersion(snapshot)]);
      },
    ),
    propertyRuns(300),
  );
});
