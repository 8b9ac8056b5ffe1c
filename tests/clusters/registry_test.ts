import assert from "node:assert/strict";
import { appCall, startFixture } from "../support/sidecar_fixture.ts";
import { calls, ROUTING, untilLogged } from "../support/multicluster.ts";
import { ClusterRegistry, loadClusters } from "../../lib/clusters/registry.ts";
import type { Upstream } from "../../lib/clusters/upstream.ts";

Deno.test("multi-cluster: failover to the next healthy cluster and back", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    assert.equal(
      (await appCall(f, "GET", "/api/v1/namespaces/ha/configmaps/x")).status,
      200,
    );
    assert.equal(calls(f).at(-1).cluster, "east");
    await f.remotes.get("east")!.close();
    await untilLogged(
      f,
      (l) =>
        l.msg === "cluster health" && l.cluster === "east" &&
        l.healthy === false,
    );
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/ha/configmaps/x",
    );
    assert.equal(answer.status, 200);
    assert.equal(calls(f).at(-1).cluster, "west");
    // a merged LIST is complete or a 503 naming the cluster it lacks
    const incomplete = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/spread-2/configmaps",
    );
    assert.equal(incomplete.status, 503, incomplete.text);
    assert.equal(incomplete.headers["retry-after"], "1");
    assert.match(
      JSON.parse(incomplete.text).message,
      /cluster east cannot answer/,
    );
    assert.equal(incomplete.headers.warning, undefined);
    // a rule with partial: true answers without it and says so
    const partial = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/partial-2/configmaps",
    );
    assert.equal(partial.status, 200);
    assert.match(
      String(partial.headers.warning),
      /cluster east is unavailable/,
    );
    assert.equal(JSON.parse(partial.text).items.length, 2);
  } finally {
    await f.close();
  }
});

const TMP = new URL("../../tmp/", import.meta.url).pathname;

function kubeconfig(contexts: string[]): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name: "c",
      cluster: {
        server: "https://127.0.0.1:1",
        "insecure-skip-tls-verify": true,
      },
    }],
    users: [{ name: "u", user: { token: "t" } }],
    contexts: contexts.map((name) => ({
      name,
      context: { cluster: "c", user: "u" },
    })),
    "current-context": contexts[0],
  });
}

const LOCAL: Upstream = {
  url: new URL("https://127.0.0.1:2"),
  source: "test",
  namespace: "ns",
  auth: () => Promise.reject(new Error("not used")),
  close: () => {},
};

Deno.test("clusters: every context of every kubeconfig is a cluster, local built in", async () => {
  await Deno.mkdir(TMP, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: TMP, prefix: "clusters-" });
  try {
    await Deno.writeTextFile(`${dir}/a.yaml`, kubeconfig(["east", "west"]));
    await Deno.writeTextFile(`${dir}/b.yaml`, kubeconfig(["north"]));
    await Deno.mkdir(`${dir}/..2026_11_24`); // the kubelet's hidden entries are skipped
    const upstreams = await loadClusters(LOCAL, dir);
    assert.deepEqual([...upstreams.keys()].sort(), [
      "east",
      "local",
      "north",
      "west",
    ]);
    assert.equal(upstreams.get("local"), LOCAL);
    for (const [name, upstream] of upstreams) {
      if (name !== "local") upstream.close();
    }

    await Deno.writeTextFile(`${dir}/c.yaml`, kubeconfig(["east"]));
    await assert.rejects(
      () => loadClusters(LOCAL, dir),
      /c.yaml: context "east" is also defined in .*a.yaml; cluster names must be unique/,
    );
    await Deno.writeTextFile(`${dir}/c.yaml`, kubeconfig(["local"]));
    await assert.rejects(
      () => loadClusters(LOCAL, dir),
      /context "local" is reserved/,
    );
    await Deno.writeTextFile(`${dir}/c.yaml`, "clusters: [");
    await assert.rejects(
      () => loadClusters(LOCAL, dir),
      /cannot load kubeconfig .*c.yaml/,
    );
    await assert.rejects(
      () => loadClusters(LOCAL, `${dir}/missing`),
      /cannot read the clusters directory/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("clusters: health flips are recorded and logged once", () => {
  const lines: string[] = [];
  const registry = new ClusterRegistry(new Map([["local", LOCAL]]), {
    log: (l) => lines.push(l),
  });
  assert.equal(registry.isHealthy("local"), true);
  assert.equal(registry.isHealthy("nowhere"), false);
  registry.setHealthy("local", false, "refused");
  registry.setHealthy("local", false, "refused again");
  registry.setHealthy("local", true);
  assert.deepEqual(lines.map((l) => JSON.parse(l).healthy), [false, true]);
  assert.throws(() => registry.get("nowhere"), /unknown cluster nowhere/);
  registry.close();
});

Deno.test("clusters: a call on a first-healthy set skips a cluster that just died", async () => {
  // Health probes far apart: only the failed call itself can notice.
  const f = await startFixture({
    remotes: ["east", "west"],
    routing: ROUTING,
    healthIntervalMs: 600_000,
  });
  try {
    assert.equal(
      (await appCall(f, "GET", "/api/v1/namespaces/ha/configmaps/x")).status,
      200,
    );
    assert.equal(calls(f).at(-1).cluster, "east");
    await f.remotes.get("east")!.close();
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/ha/configmaps/x",
    );
    assert.equal(answer.status, 200, "answered by the next cluster, not a 503");
    assert.equal(calls(f).at(-1).cluster, "west");
    assert.ok(
      f.logs.map((l) => JSON.parse(l)).some((l) =>
        l.msg === "cluster health" && l.cluster === "east" && !l.healthy
      ),
      "the failed call marked east down",
    );
  } finally {
    await f.close();
  }
});
