import assert from "node:assert/strict";
import { appCall, startFixture } from "../support/sidecar_fixture.ts";
import { calls, ROUTING } from "../support/multicluster.ts";
import {
  decodeResourceVersion,
  encodeResourceVersion,
} from "../../lib/kube/resource_version.ts";
import type { CallEnd } from "../../lib/observe/observer.ts";

Deno.test("multi-cluster: a LIST over a spread set is merged and marked", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/spread-1/configmaps",
    );
    assert.equal(answer.status, 200, answer.text);
    const list = JSON.parse(answer.text);
    assert.equal(list.kind, "ConfigMapList");
    assert.equal(list.items.length, 4);
    const where = list.items.map((
      i: { metadata: { annotations: Record<string, string> } },
    ) => i.metadata.annotations["mca.io/cluster"]);
    assert.deepEqual(where.sort(), ["east", "east", "west", "west"]);
    assert.deepEqual(decodeResourceVersion(list.metadata.resourceVersion), {
      east: "100",
      west: "100",
    });
    assert.deepEqual(
      decodeResourceVersion(list.items[0].metadata.resourceVersion),
      { [where[0]]: "100" },
    );
    assert.equal(calls(f).at(-1).cluster, "east+west");
    // client-go's first LIST (limit with resourceVersion=0) is answered
    // whole, as kube-apiserver's watch cache does, so its relists are not
    // Exact reads; the clusters are asked for whole lists
    const first = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/spread-1/configmaps?limit=500&resourceVersion=0",
    );
    const whole = JSON.parse(first.text);
    assert.equal(whole.items.length, 4);
    assert.equal(whole.metadata.continue, undefined);
    for (const name of ["east", "west"]) {
      const asked = new URL(
        f.remotes.get(name)!.requests.at(-1)!.url,
        "https://x",
      );
      assert.equal(asked.searchParams.get("limit"), null, name);
      assert.equal(asked.searchParams.get("resourceVersion"), "0", name);
    }
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: a paginated LIST walks the clusters behind one token", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const first = JSON.parse(
      (await appCall(
        f,
        "GET",
        "/api/v1/namespaces/spread-1/configmaps?limit=10",
      )).text,
    );
    assert.equal(first.items[0].metadata.annotations["mca.io/cluster"], "east");
    assert.ok(first.metadata.continue, "a token to the next cluster");
    // client-go keeps the first page's version: it names every cluster,
    // west's from a limit=1 LIST asked beside east's page
    assert.deepEqual(decodeResourceVersion(first.metadata.resourceVersion), {
      east: "100",
      west: "100",
    });
    const west = f.remotes.get("west")!;
    const snapshot = new URL(west.requests.at(-1)!.url, "https://x");
    assert.equal(snapshot.searchParams.get("limit"), "1");
    assert.equal(snapshot.searchParams.get("resourceVersion"), null);
    const second = JSON.parse(
      (await appCall(
        f,
        "GET",
        `/api/v1/namespaces/spread-1/configmaps?limit=10&continue=${first.metadata.continue}`,
      )).text,
    );
    assert.equal(
      second.items[0].metadata.annotations["mca.io/cluster"],
      "west",
    );
    assert.equal(second.metadata.continue, undefined);
    assert.equal(
      second.metadata.resourceVersion,
      first.metadata.resourceVersion,
      "every page carries the same vector",
    );
    const pinned = new URL(west.requests.at(-1)!.url, "https://x");
    assert.equal(pinned.searchParams.get("resourceVersion"), "100");
    assert.equal(pinned.searchParams.get("resourceVersionMatch"), "Exact");
    assert.equal(pinned.searchParams.get("limit"), "10");
    const bad = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/spread-1/configmaps?limit=1&continue=garbage",
    );
    assert.equal(bad.status, 410);
    // an Exact relist (client-go: limit + the list's version) lacking a
    // cluster is a 410, after which the informer lists with ""
    const lacking = encodeResourceVersion({ east: "100" });
    const relist = await appCall(
      f,
      "GET",
      `/api/v1/namespaces/spread-1/configmaps?limit=500&resourceVersion=${lacking}`,
    );
    assert.equal(relist.status, 410, relist.text);
    assert.match(JSON.parse(relist.text).message, /no version of cluster west/);
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: the end event of a merged LIST names each cluster's answer", async () => {
  const ends: CallEnd[] = [];
  const f = await startFixture({
    remotes: ["east", "west"],
    routing: ROUTING,
    observers: [{ start: () => ({ end: (e) => ends.push(e) }) }],
  });
  try {
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/spread-1/configmaps",
    );
    assert.equal(answer.status, 200);
    const outcomes = ends.at(-1)?.outcomes ?? [];
    assert.deepEqual(
      outcomes.map((o) => `${o.cluster}=${o.status}`).sort(),
      ["east=200", "west=200"],
    );
  } finally {
    await f.close();
  }
});
