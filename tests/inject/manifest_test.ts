import assert from "node:assert/strict";
import fc from "fast-check";
import { parseAllDocuments, stringify } from "yaml";
import { InjectError, type JsonObject } from "../../lib/inject/pod_spec.ts";
import { injectManifests } from "../../lib/inject/manifest.ts";
import { propertyRuns } from "../support/property.ts";

function docs(text: string): JsonObject[] {
  return parseAllDocuments(text).map((d) => d.toJS() as JsonObject);
}

function podSpecAt(obj: JsonObject, path: string[]): JsonObject {
  let node: unknown = obj;
  for (const key of path) node = (node as JsonObject)[key];
  return node as JsonObject;
}

function firstInit(spec: JsonObject): JsonObject {
  return (spec.initContainers as JsonObject[])[0];
}

const POD = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
    - name: app
      image: busybox
`;

Deno.test("manifest: comments and key order of the input survive", () => {
  const input = `# leading comment
apiVersion: v1
kind: Pod
metadata:
  name: web # trailing comment
  labels: {app: web}
spec:
  # the app
  containers:
    - name: app
      image: busybox # pinned later
      args: ["--port", "8080"]
`;
  const out = injectManifests(input);
  assert.match(out, /^# leading comment\napiVersion: v1\nkind: Pod\nmetadata:/);
  assert.match(out, /name: web # trailing comment/);
  assert.match(out, /# the app\n {2}containers:/);
  assert.match(out, /image: busybox # pinned later/);
  assert.match(out, /labels: \{ app: web \}/);
});

Deno.test("manifest: output is byte-identical when injected again", () => {
  const once = injectManifests(POD);
  assert.equal(injectManifests(once), once);
});

Deno.test("manifest: multi-document streams, workloads, List, other kinds", () => {
  const input = [
    POD,
    "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n",
    `apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers: [{name: a, image: x}]
`,
    `apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: a, image: x}]
`,
    `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec:
      containers: [{name: a}]
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: cm}
    data: {a: b}
`,
  ].join("---\n");
  const out = docs(injectManifests(input));
  assert.equal(out.length, 5);
  assert.equal(firstInit(podSpecAt(out[0], ["spec"])).name, "mca");
  assert.deepEqual(out[1], {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "s" },
    spec: { ports: [{ port: 80 }] },
  });
  assert.equal(
    firstInit(podSpecAt(out[2], ["spec", "template", "spec"])).name,
    "mca",
  );
  assert.equal(
    firstInit(podSpecAt(out[3], [
      "spec",
      "jobTemplate",
      "spec",
      "template",
      "spec",
    ])).name,
    "mca",
  );
  const items = out[4].items as JsonObject[];
  assert.equal(firstInit(podSpecAt(items[0], ["spec"])).name, "mca");
  assert.deepEqual(items[1].data, { a: "b" });
});

Deno.test("manifest: every workload kind is found", () => {
  for (const kind of ["StatefulSet", "DaemonSet", "ReplicaSet", "Job"]) {
    const input =
      `kind: ${kind}\nmetadata: {name: w}\nspec:\n  template:\n    spec:\n      containers: [{name: a}]\n`;
    const out = docs(injectManifests(input))[0];
    assert.equal(
      firstInit(podSpecAt(out, ["spec", "template", "spec"])).name,
      "mca",
      kind,
    );
  }
});

Deno.test("manifest: a same-named kind of another API group passes through", () => {
  const input =
    "apiVersion: example.com/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template: {spec: {containers: [{name: a}]}}\n";
  assert.deepEqual(docs(injectManifests(input)), docs(input));
  const v1 = "apiVersion: batch/v1\n" + input.split("\n").slice(1).join("\n");
  const out = docs(injectManifests(v1))[0];
  assert.equal(
    firstInit(podSpecAt(out, ["spec", "template", "spec"])).name,
    "mca",
  );
});

Deno.test("manifest: JSON input gives YAML output", () => {
  const input = JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "j" },
    spec: { containers: [{ name: "a", image: "x" }] },
  });
  const out = injectManifests(input);
  assert.ok(!out.trimStart().startsWith("{"));
  assert.match(out, /^apiVersion: v1\nkind: Pod\n/);
  assert.equal(injectManifests(out), out);
});

Deno.test("manifest: bad input gets one clear error", () => {
  const cases: [string, RegExp][] = [
    ["", /no input/],
    ["   \n", /no input/],
    ["kind: Pod\nspec: [unclosed\n", /invalid YAML\/JSON/],
    ['{"kind": "Pod", ', /invalid YAML\/JSON/],
    ["kind: Pod\nmetadata: {name: x}\n", /Pod "x": no spec found/],
    ["kind: Deployment\nspec: {replicas: 1}\n", /no spec.template.spec found/],
    [
      "kind: Pod\nspec:\n  hostNetwork: true\n  containers: [{name: a}]\n",
      /hostNetwork/,
    ],
    [
      "kind: Pod\nspec:\n  containers: [{name: mca, image: nginx}]\n",
      /named "mca"/,
    ],
    ["just a string\n", /expected a Kubernetes object/],
    ["metadata: {name: x}\n", /has no kind/],
    [`${POD}---\nkind: Pod\n`, /document 2: Pod: no spec found/],
    [
      "kind: List\nitems:\n  - kind: Pod\n    metadata: {name: p}\n",
      /List item 1: Pod "p": no spec/,
    ],
  ];
  for (const [input, pattern] of cases) {
    assert.throws(
      () => injectManifests(input),
      (e: Error) => e instanceof InjectError && pattern.test(e.message),
      `input ${JSON.stringify(input)} should fail with ${pattern}`,
    );
  }
});

Deno.test("manifest: empty documents in a stream pass through", () => {
  const out = injectManifests(`---\n${POD}---\n`);
  const parsed = docs(out).filter((d) => d !== null);
  assert.equal(parsed.length, 1);
  assert.equal(injectManifests(out), out);
});

const podArb = fc.record({
  apiVersion: fc.constant("v1"),
  kind: fc.constant("Pod"),
  metadata: fc.record({
    name: fc.constantFrom("a", "b"),
    labels: fc.dictionary(
      fc.constantFrom("app", "tier"),
      fc.string({ maxLength: 5 }),
    ),
  }),
  spec: fc.record({
    containers: fc.array(
      fc.record({
        name: fc.constantFrom("app", "web", "mca"),
        image: fc.constantFrom("busybox", "mca:0.1"),
        env: fc.array(
          fc.record({
            name: fc.constantFrom("KUBERNETES_SERVICE_HOST", "X"),
            value: fc.string({ maxLength: 6 }),
          }),
          { maxLength: 3 },
        ),
      }, { requiredKeys: ["name"] }),
      { minLength: 1, maxLength: 3 },
    ),
    initContainers: fc.array(
      fc.record({
        name: fc.constantFrom("init", "mca"),
        image: fc.constantFrom("x", "mca:old"),
      }),
      { maxLength: 2 },
    ),
  }, { requiredKeys: ["containers"] }),
});

Deno.test("manifest property: injecting the output again is byte-identical", () => {
  fc.assert(
    fc.property(podArb, fc.boolean(), (pod, asJson) => {
      fc.pre(
        !pod.spec.containers.some((c) =>
          c.name === "mca" && c.image !== "mca:0.1"
        ),
      );
      const input = asJson ? JSON.stringify(pod) : stringify(pod);
      const once = injectManifests(input);
      assert.equal(injectManifests(once), once);
    }),
    propertyRuns(200),
  );
});

const WIRING = {
  routingConfigMap: "routes",
  clustersSecret: "kubeconfigs",
  policyConfigMap: "mca-policy",
  metricsPort: 6469,
};

Deno.test("manifest: routing, clusters, policy and metrics wiring, byte-stable", () => {
  const once = injectManifests(POD, WIRING);
  assert.equal(injectManifests(once, WIRING), once);
  const spec = podSpecAt(docs(once)[0], ["spec"]);
  const mca = firstInit(spec);
  assert.deepEqual(mca.args, [
    "--clusters-dir",
    "/etc/mca/clusters",
    "--routing-config",
    "/etc/mca/routing/routing.yaml",
    "--policy",
    "/etc/mca/policy/policy.yaml",
    "--metrics-port",
    "6469",
  ]);
  assert.deepEqual(mca.ports, [
    { name: "mca-metrics", containerPort: 6469, protocol: "TCP" },
  ]);
  assert.deepEqual((mca.volumeMounts as JsonObject[]).slice(3), [
    { name: "mca-routing", mountPath: "/etc/mca/routing", readOnly: true },
    { name: "mca-clusters", mountPath: "/etc/mca/clusters", readOnly: true },
    { name: "mca-policy", mountPath: "/etc/mca/policy", readOnly: true },
  ]);
  assert.deepEqual((spec.volumes as JsonObject[]).slice(3), [
    { name: "mca-routing", configMap: { name: "routes" } },
    { name: "mca-clusters", secret: { secretName: "kubeconfigs" } },
    { name: "mca-policy", configMap: { name: "mca-policy" } },
  ]);
  const app = (spec.containers as JsonObject[])[0];
  assert.ok(
    !(app.volumeMounts as JsonObject[]).some((m) =>
      String(m.name).startsWith("mca-")
    ),
    "the app must not see the clusters' credentials",
  );
});

Deno.test("manifest: re-injecting without wiring drops it; an app mount of the clusters Secret is removed", () => {
  const wired = injectManifests(POD, WIRING);
  assert.equal(injectManifests(wired), injectManifests(POD));
  const sneaky =
    `${POD}      volumeMounts: [{name: mca-clusters, mountPath: /k}]\n`;
  const out = podSpecAt(docs(injectManifests(sneaky, WIRING))[0], ["spec"]);
  const app = (out.containers as JsonObject[])[0];
  assert.deepEqual(
    (app.volumeMounts as JsonObject[]).map((m) => m.name),
    ["kube-api-access-mca-sa"],
  );
});

Deno.test("manifest: bad wiring values get a clear error", () => {
  const cases: [JsonObject, RegExp][] = [
    [{ routingConfigMap: "Bad_Name" }, /routing ConfigMap name "Bad_Name"/],
    [{ clustersSecret: "-x" }, /clusters Secret name/],
    [{ policyConfigMap: "a".repeat(254) }, /policy ConfigMap name/],
    [{ metricsPort: 6443 }, /metrics port/],
    [{ metricsPort: 70000 }, /metrics port/],
  ];
  for (const [options, pattern] of cases) {
    assert.throws(
      () => injectManifests(POD, options),
      (e: Error) => e instanceof InjectError && pattern.test(e.message),
      JSON.stringify(options),
    );
  }
});

Deno.test("manifest: containers with a repeated name are matched in order, so a second inject changes nothing", () => {
  // Found by the property test: the second "web" was rebuilt from scratch and
  // `value: "="` lost its quotes.
  const input = JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "a", labels: {} },
    spec: {
      containers: [{ name: "web" }, {
        name: "web",
        env: [{ name: "X", value: "=" }],
      }],
    },
  });
  const once = injectManifests(input);
  assert.match(once, /value: "="/);
  assert.equal(injectManifests(once), once);
});
