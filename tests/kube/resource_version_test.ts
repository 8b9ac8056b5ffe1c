import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeContinue,
  decodeResourceVersion,
  encodeContinue,
  encodeResourceVersion,
  isCompositeResourceVersion,
} from "../../lib/kube/resource_version.ts";

Deno.test("resourceVersion: round trip, order-independent, opaque", () => {
  const a = encodeResourceVersion({ west: "12", east: "7" });
  const b = encodeResourceVersion({ east: "7", west: "12" });
  assert.equal(a, b, "the same versions give the same string");
  assert.ok(isCompositeResourceVersion(a));
  assert.ok(!isCompositeResourceVersion("12345"));
  assert.match(a, /^mca\.[A-Za-z0-9_-]+$/, "safe in a URL query");
  assert.deepEqual(decodeResourceVersion(a), { east: "7", west: "12" });
});

Deno.test("resourceVersion: garbage is rejected, never thrown", () => {
  for (
    const bad of [
      "",
      "123",
      "mca.",
      "mca.!!!",
      "mca.bnVsbA",
      "mca.WzFd",
      "mca.eyJhIjoxfQ",
    ]
  ) {
    assert.equal(decodeResourceVersion(bad), undefined, bad);
  }
});

Deno.test("resourceVersion property: decode(encode(v)) == v", () => {
  fc.assert(
    fc.property(
      fc.dictionary(fc.string({ minLength: 1 }), fc.string()),
      (vector) => {
        const plain = JSON.parse(JSON.stringify(vector));
        assert.deepEqual(
          decodeResourceVersion(encodeResourceVersion(plain)),
          Object.fromEntries(
            Object.entries(plain).sort(([x], [y]) =>
              x < y ? -1 : x > y ? 1 : 0
            ),
          ),
        );
      },
    ),
  );
});

Deno.test("continue token: round trip and rejection", () => {
  const state = { cluster: "east", continue: "abc", versions: { west: "9" } };
  assert.deepEqual(decodeContinue(encodeContinue(state)), state);
  assert.equal(decodeContinue("eyJ"), undefined);
  assert.equal(decodeContinue("mca.e30"), undefined);
});
