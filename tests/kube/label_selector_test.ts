import assert from "node:assert/strict";
import {
  matchesLabels,
  parseSelector,
  SelectorError,
  selectorImplies,
} from "../../lib/kube/label_selector.ts";

Deno.test("selector: parses Kubernetes syntax", () => {
  assert.deepEqual(
    parseSelector(
      "app=web, tier==front,env!=dev,zone in (b, a),x notin (y),k,!gone",
    ),
    [
      { key: "app", operator: "=", values: ["web"] },
      { key: "tier", operator: "=", values: ["front"] },
      { key: "env", operator: "!=", values: ["dev"] },
      { key: "zone", operator: "in", values: ["a", "b"] },
      { key: "x", operator: "notin", values: ["y"] },
      { key: "k", operator: "exists", values: [] },
      { key: "gone", operator: "!", values: [] },
    ],
  );
  assert.deepEqual(parseSelector(""), []);
  assert.deepEqual(
    parseSelector("example.com/team=a")[0].key,
    "example.com/team",
  );
});

Deno.test("selector: bad selectors say what is wrong", () => {
  for (
    const bad of [
      "a=b,,c",
      "a in ()",
      "-bad=x",
      "a=b c",
      "a=" + "x".repeat(64),
      "a in (b",
      "a=(x)",
    ]
  ) {
    assert.throws(() => parseSelector(bad), SelectorError, bad);
  }
});

Deno.test("selector: matching labels", () => {
  const labels = { app: "web", tier: "front" };
  const cases: [string, boolean][] = [
    ["app=web", true],
    ["app=api", false],
    ["app!=api", true],
    ["missing!=x", true],
    ["tier in (front,back)", true],
    ["tier notin (front)", false],
    ["missing notin (x)", true],
    ["app", true],
    ["missing", false],
    ["!missing", true],
    ["!app", false],
    ["app=web,tier=back", false],
    ["", true],
  ];
  for (const [text, want] of cases) {
    assert.equal(matchesLabels(parseSelector(text), labels), want, text);
  }
});

Deno.test("selector: a request selector implying a rule selector", () => {
  const cases: [string, string, boolean][] = [
    ["tier=front,app=x", "tier=front", true],
    ["tier=front", "tier=front,app=x", false],
    ["tier in (front)", "tier=front", true],
    ["tier in (a,b)", "tier in (a,b,c)", true],
    ["tier in (a,d)", "tier in (a,b,c)", false],
    ["tier=a", "tier", true],
    ["tier=a", "!tier", false],
    ["!tier", "!tier", true],
    ["tier!=a", "tier!=a", true],
    ["tier!=a", "tier=b", false],
    ["", "tier=a", false],
    ["anything=1", "", true],
  ];
  for (const [request, rule, want] of cases) {
    assert.equal(
      selectorImplies(parseSelector(request), parseSelector(rule)),
      want,
      `${request} => ${rule}`,
    );
  }
});
