import assert from "node:assert/strict";
import {
  parseRoutingConfig,
  RoutingConfigError,
} from "../../lib/routing/config.ts";

const CLUSTERS = new Set(["local", "east", "west"]);
const opts = { file: "/etc/mca/routing.yaml", clusters: CLUSTERS };

const GOOD = `# routing for the demo
discovery: local
default: local
rules:
  - name: team-b
    match:
      namespaces: [team-b, "batch-*"]
      resources: [configmaps, deployments.apps, "*.batch", pods/log]
      verbs: [get, list, watch, create]
      labels: "tier=frontend"
    cluster: east
    namespace: prod-b
  - name: spread
    match:
      namespaces: [spread]
    clusters: [east, west]
    strategy: weighted
    weights: {east: 3, west: 1}
    partial: true
`;

Deno.test("routing config: a full configuration parses", () => {
  const config = parseRoutingConfig(GOOD, opts);
  assert.equal(config.discovery, "local");
  assert.equal(config.rules.length, 2);
  const [a, b] = config.rules;
  assert.equal(a.name, "team-b");
  assert.equal(a.line, 5);
  assert.deepEqual(a.clusters, ["east"]);
  assert.equal(a.namespace, "prod-b");
  assert.ok(a.namespaces!.some((re) => re.test("batch-7")));
  assert.ok(!a.namespaces!.some((re) => re.test("batch")));
  assert.deepEqual(a.resources, [
    { resource: "configmaps", group: "", subresource: undefined },
    { resource: "deployments", group: "apps", subresource: undefined },
    { resource: "*", group: "batch", subresource: undefined },
    { resource: "pods", group: "", subresource: "log" },
  ]);
  assert.deepEqual([...a.verbs!], ["get", "list", "watch", "create"]);
  assert.deepEqual(a.labels, [
    { key: "tier", operator: "=", values: ["frontend"] },
  ]);
  assert.equal(b.strategy, "weighted");
  assert.deepEqual(b.weights, { east: 3, west: 1 });
  assert.equal(b.partial, true);
  assert.equal(a.partial, undefined, "no partial answers unless asked");
});

Deno.test("routing config: empty file means everything stays local", () => {
  assert.deepEqual(parseRoutingConfig("", opts), {
    discovery: "local",
    default: "local",
    rules: [],
  });
});

Deno.test("routing config: errors name the file, the line and the fix", () => {
  const cases: [string, RegExp][] = [
    [
      "rules:\n  - cluster: north\n",
      /^\/etc\/mca\/routing.yaml:2: unknown cluster "north" in rule rule-1 \(known: east, local, west\)$/,
    ],
    [
      'rules:\n  - match:\n      namespaces: ["team-[a]"]\n    cluster: east\n',
      /routing.yaml:3: rule rule-1: bad namespace glob "team-\[a\]"/,
    ],
    [
      'rules:\n  - match:\n      labels: "tier in (a"\n    cluster: east\n',
      /routing.yaml:3: rule rule-1: bad label selector/,
    ],
    [
      "rules:\n  - match: {verbs: [fly]}\n    cluster: east\n",
      /:2: .*unknown verb "fly"/,
    ],
    [
      "rules:\n  - match: {resources: [a/b/c]}\n    cluster: east\n",
      /:2: .*bad resource "a\/b\/c"/,
    ],
    [
      "rules:\n  - name: x\n",
      /:2: rule x: give exactly one of cluster or clusters/,
    ],
    [
      "rules:\n  - {cluster: east, clusters: [west]}\n",
      /exactly one of cluster or clusters/,
    ],
    ["rules:\n  - {clusters: [east], strategy: random}\n", /strategy must be/],
    [
      "rules:\n  - clusters: [east, west]\n    strategy: weighted\n    weights: {east: 0}\n",
      /positive weight/,
    ],
    ["rules:\n  - {cluster: east, weights: {east: -1}}\n", /whole number/],
    [
      'rules:\n  - {clusters: [east, west], strategy: round-robin, partial: "true"}\n',
      /:2: rule rule-1: partial must be true or false$/,
    ],
    [
      "rules:\n  - {clusters: [east, west], partial: true}\n",
      /:2: rule rule-1: partial applies only to round-robin or weighted/,
    ],
    [
      "rules:\n  - {cluster: east, namespace: Bad_NS}\n",
      /namespace must be a namespace name/,
    ],
    [
      "rules:\n  - {cluster: east, colour: red}\n",
      /:2: rule 1: unknown key "colour"/,
    ],
    [
      "rules:\n  - {cluster: east, match: {nmespaces: [a]}}\n",
      /unknown match key "nmespaces"/,
    ],
    ["default: mars\n", /:1: unknown cluster "mars" in default/],
    ["discovery: [a]\n", /discovery must be a cluster name/],
    ["rulez: []\n", /:1: unknown key "rulez"/],
    ["rules: {a: 1}\n", /rules must be a list/],
    ["- a\n", /must be a mapping/],
    ["rules:\n  - cluster: east\n bad indent: [\n", /invalid YAML/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(
      () => parseRoutingConfig(text, opts),
      (e: Error) => e instanceof RoutingConfigError && pattern.test(e.message),
      `${JSON.stringify(text)} should fail with ${pattern}`,
    );
  }
});
