import assert from "node:assert/strict";
import fc from "fast-check";
import { jsonPatch } from "../../lib/inject/json_patch.ts";
import {
  injectPodSpec,
  isMcaImage,
  type JsonObject,
} from "../../lib/inject/pod_spec.ts";
import { podSpec } from "../support/pod_arbitraries.ts";
import { propertyRuns } from "../support/property.ts";

/**
 * An independent RFC 6902 applier (add, remove, replace; RFC 6901 pointers
 * with `-` and escapes) used as the oracle: it shares no code with the
 * producer.
 */
function applyPatch(doc: unknown, ops: unknown[]): unknown {
  let root = structuredClone(doc);
  for (const raw of ops) {
    const op = raw as { op: string; path: string; value?: unknown };
    if (op.path === "") {
      assert.equal(op.op, "replace");
      root = structuredClone(op.value);
      continue;
    }
    assert.ok(op.path.startsWith("/"), `bad pointer ${op.path}`);
    const tokens = op.path.slice(1).split("/").map((t) =>
      t.replaceAll("~1", "/").replaceAll("~0", "~")
    );
    const last = tokens.pop()!;
    let parent: unknown = root;
    for (const t of tokens) {
      parent = (parent as Record<string, unknown>)[t];
      assert.ok(parent !== null && typeof parent === "object", op.path);
    }
    if (Array.isArray(parent)) {
      const i = last === "-" ? parent.length : Number(last);
      assert.ok(Number.isInteger(i) && i >= 0 && i <= parent.length, op.path);
      if (op.op === "add") parent.splice(i, 0, structuredClone(op.value));
      else if (op.op === "remove") parent.splice(i, 1);
      else parent[i] = structuredClone(op.value);
    } else {
      const obj = parent as Record<string, unknown>;
      if (op.op !== "add") assert.ok(Object.hasOwn(obj, last), op.path);
      if (op.op === "remove") delete obj[last];
      else obj[last] = structuredClone(op.value);
    }
  }
  return root;
}

Deno.test("json patch: equal values give no operations", () => {
  assert.deepEqual(jsonPatch({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), []);
});

Deno.test("json patch: keys with / and ~ are escaped (RFC 6901)", () => {
  const before = { metadata: { annotations: { "mca.io/x": "1" } } };
  const after = { metadata: { annotations: { "mca.io/x": "2", "a~b": "c" } } };
  const ops = jsonPatch(before, after);
  assert.deepEqual(ops, [
    { op: "replace", path: "/metadata/annotations/mca.io~1x", value: "2" },
    { op: "add", path: "/metadata/annotations/a~0b", value: "c" },
  ]);
  assert.deepEqual(applyPatch(before, ops), after);
});

Deno.test("json patch: arrays of another length are replaced whole", () => {
  const ops = jsonPatch({ l: [1, 2] }, { l: [1, 2, 3] });
  assert.deepEqual(ops, [{ op: "replace", path: "/l", value: [1, 2, 3] }]);
});

Deno.test("json patch property: applying diff(a, b) to a gives b", () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
      assert.deepEqual(applyPatch(a, jsonPatch(a, b)), b);
    }),
    propertyRuns(500),
  );
});

Deno.test("json patch property: patching a Pod gives exactly inject(Pod)", () => {
  fc.assert(
    fc.property(podSpec, (generated) => {
      const spec = JSON.parse(JSON.stringify(generated)) as JsonObject;
      fc.pre(
        !(spec.containers as JsonObject[]).some((c) =>
          c.name === "mca" && !isMcaImage(c.image, "mca:latest")
        ),
      );
      const pod = { apiVersion: "v1", kind: "Pod", metadata: {}, spec };
      const injected = { ...pod, spec: injectPodSpec(spec) };
      const ops = jsonPatch(pod, injected);
      assert.deepEqual(applyPatch(pod, ops), injected);
      assert.deepEqual(
        jsonPatch(injected, { ...pod, spec: injectPodSpec(injected.spec) }),
        [],
        "re-injecting gives an empty patch",
      );
      assert.ok(ops.every((o) => o.path.startsWith("/spec/")));
    }),
    propertyRuns(300),
  );
});
