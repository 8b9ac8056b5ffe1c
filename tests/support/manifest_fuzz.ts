/**
 * Generator of manifest streams over YAML's corners for the inject fuzz test
 * and `deno task fuzz:inject`: YAML 1.1 scalars, aliases and merge keys
 * outside (kept) and inside (refused) the Pod spec, tags, big integers, deep
 * nesting, empty and comment-only documents, and JSON input.
 */
import fc from "fast-check";

/** Plain scalars whose meaning differs between YAML 1.1 and 1.2 or readers. */
const SCALARS = [
  "yes",
  "no",
  "on",
  "off",
  "y",
  "n",
  "Yes",
  "OFF",
  "true",
  "False",
  "0644",
  "0400",
  "0o17",
  "0x1F",
  "0b101",
  "1_000",
  "+12",
  "012345",
  "1:20",
  "190:20:30",
  "9007199254740993",
  "-12345678901234567890",
  "1e3",
  "1.5",
  "6.8523015e+5",
  ".inf",
  "-.inf",
  ".nan",
  "~",
  "null",
  "",
  "'0644'",
  '"yes"',
  '"\\x41\\u00e9"',
  "2001-12-14",
  "busybox",
  "a b",
  "'it''s'",
  "-",
  "1.0",
];

const scalar = fc.constantFrom(...SCALARS);
/** Tags kept outside a Pod spec, refused inside. */
const TAGGED = fc.constantFrom(
  "!!binary aGVsbG8=",
  "!!str 0644",
  "!!int 0x10",
  "!!float 1",
  "!!set {a, b}",
  "!!omap [a: 1, b: 2]",
);

/** Corners inside the Pod spec that mca --inject must refuse. */
const SPEC_HAZARDS = [
  "      resources: *r\n",
  "      image: *i\n",
  "      <<: *r\n",
  "      args: [!!binary aGVsbG8=]\n",
  "      env: *e\n",
];

export interface FuzzCase {
  input: string;
  json: boolean;
  /** True when the stream must be refused (a hazard, too deep, no object). */
  mustRefuse: boolean;
}

function block(values: string[], indent: string): string {
  return values.map((v, i) => `${indent}k${i}: ${v}\n`).join("");
}

const yamlPod = fc.record({
  labels: fc.array(scalar, { minLength: 1, maxLength: 4 }),
  args: fc.array(scalar, { maxLength: 4 }),
  env: fc.array(scalar, { maxLength: 3 }),
  mode: fc.constantFrom("0644", "0400", "420", "0o644", "0x1A4"),
  user: fc.constantFrom("9007199254740993", "1000", "0777", "65_532"),
  aliasOutside: fc.boolean(),
  mergeOutside: fc.boolean(),
  tagged: fc.array(TAGGED, { maxLength: 2 }),
  hazard: fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 8 },
    { arbitrary: fc.constantFrom(...SPEC_HAZARDS), weight: 1 },
  ),
  depth: fc.constantFrom(1, 2, 3, 5, 8, 20, 60, 150, 260),
  kind: fc.constantFrom("Pod", "Deployment", "List"),
});

type PodParts = typeof yamlPod extends fc.Arbitrary<infer T> ? T : never;

function podText(p: PodParts): string {
  const extra = p.tagged.map((t, i) => `t${i}: ${t}\n`).join(
    "",
  );
  const nest = "[".repeat(p.depth) + "]".repeat(p.depth);
  const spec = "  containers:\n    - name: app\n      image: busybox\n" +
    (p.args.length
      ? "      args:\n" + p.args.map((a) => `        - ${a}\n`).join("")
      : "") +
    (p.env.length
      ? "      env:\n" +
        p.env.map((v, i) => `        - name: E${i}\n          value: ${v}\n`)
          .join("")
      : "") +
    (p.hazard ?? "") +
    `  securityContext:\n    runAsUser: ${p.user}\n` +
    "  volumes:\n    - name: cfg\n      configMap:\n        name: c\n" +
    `        defaultMode: ${p.mode}\n`;
  const head = "anchors:\n  r: &r {limits: {cpu: 1}}\n  i: &i busybox\n" +
    "  e: &e [{name: A, value: b}]\n" +
    "metadata:\n  name: p\n  labels: &l\n" + block(p.labels, "    ") +
    (p.aliasOutside ? "  annotations: *l\n" : "") +
    (p.mergeOutside ? "copy:\n  <<: *l\n  extra: 1\n" : "") +
    extra + `nested: ${nest}\n`;
  const indentSpec = (s: string, pad: string) =>
    s.split("\n").map((l) => (l ? pad + l : l)).join("\n");
  if (p.kind === "Pod") {
    return `apiVersion: v1\nkind: Pod\n${head}spec:\n${spec}`;
  }
  if (p.kind === "Deployment") {
    return `apiVersion: apps/v1\nkind: Deployment\n${head}spec:\n  template:\n    spec:\n${
      indentSpec(spec, "    ")
    }`;
  }
  return `apiVersion: v1\nkind: List\n${head}items:\n  - apiVersion: v1\n    kind: Pod\n    spec:\n${
    indentSpec(spec, "    ")
  }`;
}

const FILLERS = [
  "",
  "---\n# only a comment\n",
  "--- ~\n",
  "---\n",
  "--- null\n",
];

const yamlCase: fc.Arbitrary<FuzzCase> = fc.record({
  pods: fc.oneof(
    {
      arbitrary: fc.array(yamlPod, { minLength: 1, maxLength: 2 }),
      weight: 15,
    },
    { arbitrary: fc.constant([] as PodParts[]), weight: 1 },
  ),
  filler: fc.constantFrom(...FILLERS),
  lead: fc.constantFrom("", "# leading comment\n", "%YAML 1.1\n---\n"),
}).map(({ pods, filler, lead }) => {
  const docs = pods.map(podText);
  const input = lead + docs.join("---\n") + filler;
  const mustRefuse = pods.length === 0 ||
    pods.some((p) => p.hazard !== undefined || p.depth > 190);
  return { input: input === "" ? "# empty\n" : input, json: false, mustRefuse };
});

/** JSON values written as text so that big integers stay exact. */
const JSON_SCALARS = [
  '"yes"',
  '"0644"',
  '"1_000"',
  '"1:20"',
  '"~"',
  '"null"',
  '"<<"',
  '"="',
  '"1e3"',
  '"2001-12-14"',
  '""',
  "9007199254740993",
  "-12345678901234567890",
  "1e3",
  "1.5",
  "1e-7",
  "2.5e+300",
  "true",
  "null",
  "0",
  '"\\u00e9"',
];

const jsonCase: fc.Arbitrary<FuzzCase> = fc.record({
  labels: fc.array(fc.constantFrom(...JSON_SCALARS), { maxLength: 5 }),
  args: fc.array(fc.constantFrom(...JSON_SCALARS), { maxLength: 5 }),
  user: fc.constantFrom("9007199254740993", "1000"),
}).map(({ labels, args, user }) => {
  const obj = (vals: string[]) =>
    "{" + vals.map((v, i) => `"k${i}": ${v}`).join(", ") + "}";
  const input =
    `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j", ` +
    `"annotations": ${
      obj(labels)
    }}, "spec": {"securityContext": {"runAsUser": ${user}}, ` +
    `"containers": [{"name": "app", "args": [${args.join(", ")}], "x": ${
      obj(args)
    }}]}}`;
  return { input, json: true, mustRefuse: false };
});

/** Every kind of case, YAML four times as often as JSON. */
export const fuzzCase: fc.Arbitrary<FuzzCase> = fc.oneof(
  { arbitrary: yamlCase, weight: 4 },
  { arbitrary: jsonCase, weight: 1 },
);
