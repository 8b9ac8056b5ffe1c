import assert from "node:assert/strict";
import { appCall, startFixture } from "../support/sidecar_fixture.ts";
import { calls, ROUTING } from "../support/multicluster.ts";

Deno.test("multi-cluster: calls no rule matches stay local", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/other/configmaps/x",
    );
    assert.equal(answer.status, 200);
    assert.equal(f.upstream.requests.length, 1);
    assert.equal(calls(f)[0].cluster, "local");
    const discovery = await appCall(f, "GET", "/version");
    assert.equal(discovery.status, 200);
    assert.equal(calls(f)[1].cluster, "local");
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: a namespace mapped to another one, both ways", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/app-ns/configmaps/cfg",
    );
    assert.equal(answer.status, 200);
    const east = f.remotes.get("east")!;
    assert.equal(
      east.requests.at(-1)!.url,
      "/api/v1/namespaces/remote-ns/configmaps/cfg",
    );
    assert.equal(
      east.requests.at(-1)!.headers.authorization,
      "Bearer fake-upstream-sa-token",
    );
    assert.equal(
      JSON.parse(answer.text).metadata.namespace,
      "app-ns",
      "the app never sees remote-ns",
    );
    const list = JSON.parse(
      (await appCall(f, "GET", "/api/v1/namespaces/app-ns/configmaps")).text,
    );
    assert.deepEqual(
      list.items.map((i: { metadata: { namespace: string } }) =>
        i.metadata.namespace
      ),
      ["app-ns", "app-ns"],
    );
    assert.equal(calls(f).at(-1).cluster, "east");
    assert.equal(f.upstream.requests.length, 0, "nothing went to local");
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: creates on a round-robin set alternate clusters", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    for (let i = 0; i < 4; i++) {
      const answer = await appCall(
        f,
        "POST",
        "/api/v1/namespaces/spread-1/configmaps",
        {
          body: JSON.stringify({ metadata: { name: `c${i}` } }),
          headers: { "content-type": "application/json" },
        },
      );
      assert.equal(answer.status, 201);
    }
    assert.deepEqual(calls(f).map((l) => l.cluster), [
      "east",
      "west",
      "east",
      "west",
    ]);
    // exec on a spread set is a call by name, not a create
    const exec = calls(f).length;
    await appCall(f, "POST", "/api/v1/namespaces/spread-1/pods/p/eviction", {
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    assert.equal(
      calls(f)[exec].cluster,
      "east+west",
      "asked cluster by cluster",
    );
  } finally {
    await f.close();
  }
});
