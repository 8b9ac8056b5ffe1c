import assert from "node:assert/strict";
import { appCall, startFixture } from "../support/sidecar_fixture.ts";
import { calls, untilLogged } from "../support/multicluster.ts";

Deno.test("multi-cluster: configuration reload, and an invalid one is kept out", async () => {
  const f = await startFixture({
    remotes: ["east", "west"],
    routing: "rules: []\n",
  });
  try {
    await appCall(f, "GET", "/api/v1/namespaces/moved/configmaps/x");
    assert.equal(calls(f).at(-1).cluster, "local");
    const tmp = `${f.routingFile}.new`;
    await Deno.writeTextFile(
      tmp,
      "rules:\n  - {match: {namespaces: [moved]}, cluster: west}\n",
    );
    await Deno.rename(tmp, f.routingFile);
    await untilLogged(f, (l) => l.msg === "routing configuration loaded");
    await appCall(f, "GET", "/api/v1/namespaces/moved/configmaps/x");
    assert.equal(calls(f).at(-1).cluster, "west");
    await Deno.writeTextFile(
      tmp,
      "rules:\n  - {match: {namespaces: [moved]}, cluster: mars}\n",
    );
    await Deno.rename(tmp, f.routingFile);
    await untilLogged(
      f,
      (l) =>
        l.msg === "routing configuration rejected; keeping the previous one",
    );
    const rejected = f.logs.map((l) => JSON.parse(l)).find((l) =>
      l.level === "error"
    );
    assert.match(rejected.error, /routing.yaml:2: unknown cluster "mars"/);
    await appCall(f, "GET", "/api/v1/namespaces/moved/configmaps/x");
    assert.equal(
      calls(f).at(-1).cluster,
      "west",
      "the last good configuration is still in force",
    );
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: an invalid configuration at start is a clear start-up error", async () => {
  await assert.rejects(
    () =>
      startFixture({
        remotes: ["east"],
        routing: "rules:\n  - cluster: west\n",
      }),
    /routing.yaml:2: unknown cluster "west" in rule rule-1 \(known: east, local\)/,
  );
});
