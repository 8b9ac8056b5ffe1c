import assert from "node:assert/strict";
import { appCall, startFixture } from "../support/sidecar_fixture.ts";
import { calls, ROUTING } from "../support/multicluster.ts";
import { decodeResourceVersion } from "../../lib/kube/resource_version.ts";
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
    assert.deepEqual(decodeResourceVersion(second.metadata.resourceVersion), {
      east: "100",
      west: "100",
    });
    const bad = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/spread-1/configmaps?limit=1&continue=garbage",
    );
    assert.equal(bad.status, 410);
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
