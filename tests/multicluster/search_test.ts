import assert from "node:assert/strict";
import {
  appCall,
  type Fixture,
  startFixture,
} from "../support/sidecar_fixture.ts";
import { ROUTING } from "../support/multicluster.ts";
import {
  decodeResourceVersion,
  encodeResourceVersion,
} from "../../lib/kube/resource_version.ts";
import type { CallEnd } from "../../lib/observe/observer.ts";
import { undecorateObject } from "../../lib/multicluster/rewrite.ts";

const CM = "/api/v1/namespaces/spread-1/configmaps";
const APPLY = { "content-type": "application/apply-patch+yaml" };

/** Two remotes: `only-east` lives in east, `only-west` in west, `nowhere*` in neither. */
async function world(ends: CallEnd[] = []): Promise<Fixture> {
  const f = await startFixture({
    remotes: ["east", "west"],
    routing: ROUTING,
    observers: [{ start: () => ({ end: (e) => ends.push(e) }) }],
  });
  f.remotes.get("east")!.hideConfigMaps(["only-west", "nowhere", "nowhere-2"]);
  f.remotes.get("west")!.hideConfigMaps(["only-east", "nowhere", "nowhere-2"]);
  return f;
}

/** The `METHOD path` of the writes (not GETs) each remote received since `from`. */
function writes(f: Fixture, from: Record<string, number> = {}) {
  return Object.fromEntries(
    [...f.remotes].map(([name, r]) => [
      name,
      r.requests.slice(from[name] ?? 0).filter((q) => q.method !== "GET")
        .map((q) => `${q.method} ${q.url.split("?")[0]}`),
    ]),
  );
}

function marks(f: Fixture): Record<string, number> {
  return Object.fromEntries(
    [...f.remotes].map(([name, r]) => [name, r.requests.length]),
  );
}

Deno.test("multi-cluster: an apply goes to the cluster that holds the object, never makes a copy", async () => {
  const f = await world();
  try {
    // before: PATCH was asked in order and the first cluster (east) created a copy
    const body =
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: only-west}\n";
    const answer = await appCall(
      f,
      "PATCH",
      `${CM}/only-west?fieldManager=app`,
      { headers: APPLY, body },
    );
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(writes(f), {
      east: [],
      west: [`PATCH ${CM}/only-west`],
    });
    // located with a GET of the object itself, without the write's query
    const gets = f.remotes.get("east")!.requests.filter((q) =>
      q.method === "GET"
    );
    assert.equal(gets.at(-1)!.url, `${CM}/only-west`);
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: an apply of an object held nowhere creates it where creates go (round-robin)", async () => {
  const f = await world();
  try {
    const where: string[] = [];
    for (const name of ["nowhere", "nowhere-2"]) {
      const before = marks(f);
      const answer = await appCall(f, "PATCH", `${CM}/${name}`, {
        headers: APPLY,
        body: `metadata: {name: ${name}}\n`,
      });
      assert.equal(answer.status, 200, answer.text);
      const w = writes(f, before);
      const clusters = Object.keys(w).filter((c) => w[c].length > 0);
      assert.equal(clusters.length, 1, JSON.stringify(w));
      where.push(clusters[0]);
    }
    assert.deepEqual(where.sort(), ["east", "west"], "one turn each");
    // a merge patch (which cannot create) of an object held nowhere: 404, nothing written
    const before = marks(f);
    const patch = await appCall(f, "PATCH", `${CM}/nowhere`, {
      headers: { "content-type": "application/merge-patch+json" },
      body: '{"data":{"a":"b"}}',
    });
    assert.equal(patch.status, 404, patch.text);
    assert.deepEqual(writes(f, before), { east: [], west: [] });
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: a name in two clusters: a GET answers with a Warning, a write is 409 unless it names one", async () => {
  const ends: CallEnd[] = [];
  const f = await world(ends);
  try {
    const read = await appCall(f, "GET", `${CM}/shared`);
    assert.equal(read.status, 200);
    assert.match(
      String(read.headers.warning),
      /configmaps spread-1\/shared exists in clusters east, west/,
    );
    assert.equal(
      JSON.parse(read.text).metadata.annotations["mca.io/cluster"],
      "east",
    );
    assert.equal(ends.at(-1)!.collisions, 1);
    const single = await appCall(f, "GET", `${CM}/only-east`);
    assert.equal(single.headers.warning, undefined);
    assert.equal(ends.at(-1)!.collisions, undefined);

    const before = marks(f);
    const merge = { "content-type": "application/merge-patch+json" };
    const ambiguous = await appCall(f, "PATCH", `${CM}/shared`, {
      headers: merge,
      body: '{"data":{"a":"b"}}',
    });
    assert.equal(ambiguous.status, 409, ambiguous.text);
    assert.match(
      JSON.parse(ambiguous.text).message,
      /east, west.*mca\.io\/cluster/,
    );
    assert.deepEqual(writes(f, before), { east: [], west: [] });

    const named = await appCall(f, "PATCH", `${CM}/shared`, {
      headers: merge,
      body: '{"metadata":{"annotations":{"mca.io/cluster":"west"}}}',
    });
    assert.equal(named.status, 200, named.text);
    assert.deepEqual(writes(f, before), {
      east: [],
      west: [`PATCH ${CM}/shared`],
    });
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: a write whose object is in no reachable cluster while one is down is a 503, not a copy", async () => {
  const f = await world();
  try {
    await f.remotes.get("west")!.close();
    const answer = await appCall(f, "PATCH", `${CM}/only-west`, {
      headers: APPLY,
      body: "metadata: {name: only-west}\n",
    });
    assert.equal(answer.status, 503, answer.text);
    assert.match(
      JSON.parse(answer.text).message,
      /cluster west cannot be asked/,
    );
    assert.deepEqual(writes(f).east, []);
    // an object found in a reachable cluster is still written there
    const held = await appCall(f, "PATCH", `${CM}/only-east`, {
      headers: APPLY,
      body: "metadata: {name: only-east}\n",
    });
    assert.equal(held.status, 200, held.text);
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: a delete names its cluster by its precondition (the version mca gave)", () => {
  // checked on the body the dispatcher reads: a DELETE with a body from
  // the test's node:http client reached mca unframed (400 HPE_CLOSED_CONNECTION)
  const options = {
    kind: "DeleteOptions",
    preconditions: { resourceVersion: encodeResourceVersion({ east: "100" }) },
  };
  assert.equal(undecorateObject(options), "east");
  assert.equal(options.preconditions.resourceVersion, "100");
  const plain = { kind: "DeleteOptions", preconditions: { uid: "u" } };
  assert.equal(undecorateObject(plain), undefined);
});

Deno.test("multi-cluster: a merged LIST names shared names in a Warning; the mca.io/cluster selector lists one cluster", async () => {
  const ends: CallEnd[] = [];
  const f = await world(ends);
  try {
    // both fake clusters hold alpha and beta in every namespace
    const all = await appCall(f, "GET", CM);
    assert.equal(all.status, 200);
    assert.match(
      String(all.headers.warning),
      /spread-1\/alpha, spread-1\/beta exist in more than one cluster/,
    );
    assert.equal(ends.at(-1)!.collisions, 2);
    const east = await appCall(
      f,
      "GET",
      `${CM}?labelSelector=${encodeURIComponent("mca.io/cluster=east,app=x")}`,
    );
    assert.equal(east.status, 200, east.text);
    assert.equal(east.headers.warning, undefined);
    const list = JSON.parse(east.text);
    assert.deepEqual(
      list.items.map((
        i: { metadata: { annotations: Record<string, string> } },
      ) => i.metadata.annotations["mca.io/cluster"]),
      ["east", "east"],
    );
    assert.deepEqual(
      Object.keys(decodeResourceVersion(list.metadata.resourceVersion)!),
      ["east"],
    );
    const asked = new URL(
      f.remotes.get("east")!.requests.at(-1)!.url,
      "https://x",
    );
    assert.equal(
      asked.searchParams.get("labelSelector"),
      "app=x",
      "mca's term removed",
    );
    assert.equal(
      f.remotes.get("west")!.requests.filter((q) =>
        q.url.includes("labelSelector")
      ).length,
      0,
    );
  } finally {
    await f.close();
  }
});
