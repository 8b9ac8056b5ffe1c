/**
 * Regressions of issue 11 (items 7-10): YAML corners that `mca --inject` once
 * rewrote silently. Each either keeps its meaning and bytes or is refused
 * with one line.
 */
import assert from "node:assert/strict";
import { injectManifests } from "../../lib/inject/manifest.ts";
import { InjectError } from "../../lib/inject/pod_spec.ts";

const HEAD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n";

function refused(input: string, pattern: RegExp): void {
  assert.throws(
    () => injectManifests(input),
    (e: Error) =>
      e instanceof InjectError && pattern.test(e.message) &&
      !e.message.includes("\n"),
    `${JSON.stringify(input)} should be refused with ${pattern}`,
  );
}

Deno.test("yaml: aliases and merge keys inside a Pod spec are refused with the line", () => {
  const alias = "YAML aliases/merge keys inside a Pod spec are not supported";
  const cases: [string, RegExp][] = [
    [
      "x: &res {limits: {cpu: 1}}\n" + HEAD +
      "spec:\n  containers:\n    - name: a\n      resources: *res\n",
      new RegExp(`${alias} \\(line 9\\); expand them first`),
    ],
    [
      HEAD +
      "x: &img busybox\nspec:\n  containers:\n    - name: a\n      image: *img\n",
      new RegExp(`${alias} \\(line 9\\)`),
    ],
    [
      HEAD +
      "x: &c {image: busybox}\nspec:\n  containers:\n    - <<: *c\n      name: a\n",
      new RegExp(alias),
    ],
    [
      HEAD +
      "x: &envs [{name: A, value: b}]\nspec:\n  containers:\n    - name: a\n      env: *envs\n",
      new RegExp(alias),
    ],
    [
      "apiVersion: v1\nkind: Pod\nmetadata: &s {name: p}\nspec: *s\n",
      new RegExp(`${alias} \\(line 4\\)`),
    ],
    [
      "kind: List\nx: &pod {kind: Pod, spec: {containers: [{name: a}]}}\nitems: [*pod]\n",
      new RegExp(alias),
    ],
    // an anchor on the Pod spec that is repeated elsewhere would change there
    [
      HEAD + "spec: &s\n  containers: [{name: a}]\nx: *s\n",
      /anchors repeated by an alias \(&s\)/,
    ],
  ];
  for (const [input, pattern] of cases) refused(input, pattern);
});

Deno.test("yaml: aliases outside the Pod spec are kept byte for byte", () => {
  const input = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n" +
    "  labels: &l {app: web, n: 0644}\n  annotations: *l\n" +
    "spec:\n  containers:\n    - name: a\n";
  const out = injectManifests(input);
  assert.ok(
    out.startsWith(
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: &l { app: web, n: 0644 }\n  annotations: *l\n",
    ),
    out,
  );
  assert.equal(injectManifests(out), out);
});

Deno.test("yaml: YAML 1.1 scalars keep their text (0644 stays 0644, not 644)", () => {
  const input = HEAD + `spec:
  containers:
    - name: a
      args: [yes, off, 0x1F, 1_000, 1:20, 0o17, 1e3, ~]
  volumes:
    - name: cfg
      configMap:
        name: c
        defaultMode: 0644
        items: [{key: k, path: p, mode: 0400}]
`;
  const out = injectManifests(input);
  assert.match(out, /defaultMode: 0644\n/);
  assert.match(out, /mode: 0400 /);
  assert.match(out, /args: \[ yes, off, 0x1F, 1_000, 1:20, 0o17, 1e3, ~ \]/);
  assert.equal(injectManifests(out), out);
});

Deno.test("yaml: big integers stay exact in YAML and JSON input", () => {
  const yaml = HEAD +
    "spec:\n  securityContext: {runAsUser: 9007199254740993}\n  containers: [{name: a}]\n";
  assert.match(injectManifests(yaml), /runAsUser: 9007199254740993 \}/);
  const json =
    `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"securityContext":{"runAsUser":9007199254740993},"containers":[{"name":"a","args":["yes","0644","1e3"],"x":[1e-7,1.5,1e3]}]}}`;
  const out = injectManifests(json);
  assert.match(out, /runAsUser: 9007199254740993\n/);
  // strings that YAML 1.1 would read as other types are quoted
  assert.match(out, /- "yes"\n/);
  assert.match(out, /- "0644"\n/);
  assert.match(out, /- "1e3"\n/);
  // floats are written so that YAML 1.1 reads a float
  assert.match(out, /- 1\.0e-7\n/);
  assert.equal(injectManifests(out), out);
});

Deno.test("yaml: tags and non-string keys inside a Pod spec are refused", () => {
  refused(
    HEAD +
      "spec:\n  containers:\n    - name: a\n      args: [!!binary aGVsbG8=]\n",
    /YAML tag !!binary inside a Pod spec is not supported \(line 8\)/,
  );
  refused(
    HEAD + "spec: !!omap\n  - containers: [{name: a}]\n",
    /YAML tag !!omap/,
  );
  refused(
    HEAD + "spec:\n  containers: [{name: a}]\n  1: x\n",
    /a Pod spec key is not a string \(line 7\)/,
  );
});

Deno.test("yaml: tags and odd keys outside a Pod spec are kept", () => {
  const input = HEAD.replace("name: p\n", "name: p\n  x: !!binary aGVsbG8=\n") +
    "y: !!omap [{a: 1}]\n1: z\nspec: {containers: [{name: a}]}\n";
  const out = injectManifests(input);
  assert.match(out, /x: !!binary aGVsbG8=\n/);
  assert.match(out, /y: !!omap \[ a: 1 \]\n1: z\n/);
  assert.equal(injectManifests(out), out);
});

Deno.test("yaml: 3,000-deep nesting is one line, not a stack trace", () => {
  const deep = HEAD + "spec: " + "[".repeat(3000) + "]".repeat(3000) + "\n";
  refused(deep, /nests deeper than 200 levels/);
  const block = HEAD + "spec:\n" +
    Array.from({ length: 3000 }, (_, i) => " ".repeat(i + 1) + "a:").join(
      "\n",
    ) +
    " 1\n";
  refused(block, /nests deeper than 200 levels/);
});

Deno.test("yaml: a stream without objects is refused every time (idempotent)", () => {
  for (
    const input of [
      "# only a comment\n",
      "null\n",
      "~\n",
      "---\n",
      "--- # c\n...\n",
    ]
  ) {
    refused(input, /^no input: the stream holds no Kubernetes object/);
  }
});

Deno.test("yaml: a %YAML document after another one stays a valid stream", () => {
  const pod = "kind: Pod\nspec: {containers: [{name: a}]}\n";
  const out = injectManifests(`${pod}---\n${pod}...\n%YAML 1.1\n---\n${pod}`);
  assert.match(out, /\n\.\.\.\n%YAML 1\.1\n---\n/);
  assert.doesNotMatch(out, /\.\.\.\n\.\.\./);
  assert.equal(injectManifests(out), out);
});

Deno.test("yaml: JSON strings a YAML 1.1 reader takes for keys are quoted", () => {
  const out = injectManifests(
    '{"kind": "Pod", "metadata": {"annotations": {"a": "<<", "b": "="}}, "spec": {"containers": [{"name": "a"}]}}',
  );
  assert.match(out, /a: "<<"\n {4}b: "="\n/);
});
