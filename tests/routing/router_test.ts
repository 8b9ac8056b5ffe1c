import assert from "node:assert/strict";
import { parseRequestInfo } from "../../lib/kube/request_info.ts";
import { parseRoutingConfig } from "../../lib/routing/config.ts";
import { matchRule, Router } from "../../lib/routing/router.ts";

const clusters = new Set(["local", "east", "west"]);
const config = parseRoutingConfig(
  `
rules:
  - name: labelled
    match: {namespaces: [shop], labels: "tier=frontend"}
    cluster: west
  - name: team-b
    match:
      namespaces: [team-b]
      resources: [configmaps, deployments.apps, pods/log]
      verbs: [get, list, create]
    cluster: east
    namespace: prod-b
  - name: failover
    match: {namespaces: ["ha-*"]}
    clusters: [east, west]
  - name: spread
    match: {namespaces: [spread]}
    clusters: [east, west]
    strategy: round-robin
  - name: weighted
    match: {namespaces: [weighted]}
    clusters: [east, west, local]
    strategy: weighted
    weights: {east: 3, west: 1}
`,
  { file: "r.yaml", clusters },
);

function info(method: string, path: string) {
  return parseRequestInfo(method, path);
}

Deno.test("router: rule matching by namespace, resource, verb", () => {
  const m = (method: string, path: string) =>
    matchRule(config, info(method, path))?.name;
  assert.equal(m("GET", "/api/v1/namespaces/team-b/configmaps/x"), "team-b");
  assert.equal(
    m("GET", "/apis/apps/v1/namespaces/team-b/deployments"),
    "team-b",
  );
  assert.equal(m("GET", "/api/v1/namespaces/team-b/pods/p/log"), "team-b");
  assert.equal(
    m("GET", "/api/v1/namespaces/team-b/pods/p"),
    undefined,
    "pods not listed",
  );
  assert.equal(
    m("DELETE", "/api/v1/namespaces/team-b/configmaps/x"),
    undefined,
    "verb",
  );
  assert.equal(
    m("GET", "/apis/extensions/v1beta1/namespaces/team-b/deployments"),
    undefined,
    "group",
  );
  assert.equal(m("GET", "/api/v1/namespaces/ha-1/pods"), "failover", "glob");
  assert.equal(
    m("GET", "/api/v1/pods"),
    undefined,
    "cluster-wide calls match no namespace rule",
  );
  assert.equal(m("GET", "/version"), undefined);
});

Deno.test("router: label rules match request selectors and object labels", () => {
  const list = info(
    "GET",
    "/api/v1/namespaces/shop/pods?labelSelector=tier%3Dfrontend,app%3Dx",
  );
  assert.equal(matchRule(config, list)?.name, "labelled");
  assert.equal(
    matchRule(
      config,
      info("GET", "/api/v1/namespaces/shop/pods?labelSelector=app%3Dx"),
    ),
    undefined,
  );
  const create = info("POST", "/api/v1/namespaces/shop/pods");
  assert.equal(
    matchRule(config, create, { objectLabels: { tier: "frontend" } })?.name,
    "labelled",
  );
  assert.equal(
    matchRule(config, create, { objectLabels: { tier: "backend" } }),
    undefined,
  );
});

Deno.test("router: plans for single, failover, spread and fan-out", () => {
  const healthy = new Set(["local", "east", "west"]);
  const router = new Router(() => config, (c) => healthy.has(c));
  assert.deepEqual(router.plan(info("GET", "/apis")), {
    kind: "one",
    cluster: "local",
  });
  assert.deepEqual(router.plan(info("GET", "/api/v1/namespaces/other/pods")), {
    kind: "one",
    cluster: "local",
  });
  assert.deepEqual(
    router.plan(info("GET", "/api/v1/namespaces/team-b/configmaps")),
    {
      kind: "one",
      cluster: "east",
      rule: "team-b",
      namespace: "prod-b",
    },
  );
  const ha = info("GET", "/api/v1/namespaces/ha-1/pods");
  assert.equal((router.plan(ha) as { cluster: string }).cluster, "east");
  healthy.delete("east");
  assert.equal(
    (router.plan(ha) as { cluster: string }).cluster,
    "west",
    "failover",
  );
  healthy.add("east");
  assert.equal(
    (router.plan(ha) as { cluster: string }).cluster,
    "east",
    "recovery",
  );

  const creates = Array.from(
    { length: 4 },
    () =>
      (router.plan(info("POST", "/api/v1/namespaces/spread/configmaps")) as {
        cluster: string;
      }).cluster,
  );
  assert.deepEqual(creates.sort(), ["east", "east", "west", "west"]);

  healthy.delete("west");
  assert.deepEqual(
    router.plan(info("GET", "/api/v1/namespaces/spread/configmaps?watch=1")),
    {
      kind: "fanout",
      clusters: ["east"],
      missing: ["west"],
      rule: "spread",
      namespace: undefined,
    },
  );
  healthy.add("west");
  assert.deepEqual(
    router.plan(info("GET", "/api/v1/namespaces/spread/configmaps/x")),
    {
      kind: "search",
      clusters: ["east", "west"],
      missing: [],
      rule: "spread",
      namespace: undefined,
    },
  );
  assert.deepEqual(
    router.plan(info("PUT", "/api/v1/namespaces/spread/configmaps/x"), {
      objectCluster: "west",
    }),
    {
      kind: "one",
      cluster: "west",
      rule: "spread",
      namespace: undefined,
      decorate: true,
    },
  );
});

Deno.test("router: weighted spread follows the weights exactly", () => {
  const router = new Router(() => config, () => true);
  const counts: Record<string, number> = {};
  for (let i = 0; i < 400; i++) {
    const plan = router.plan(
      info("POST", "/api/v1/namespaces/weighted/configmaps"),
    );
    const c = (plan as { cluster: string }).cluster;
    counts[c] = (counts[c] ?? 0) + 1;
  }
  assert.deepEqual(counts, { east: 300, west: 100 }, "local has weight 0");
});
