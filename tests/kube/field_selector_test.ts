import assert from "node:assert/strict";
import { parseFieldSelector } from "../../lib/kube/field_selector.ts";

Deno.test("field selector: terms are sorted, with their operator", () => {
  assert.deepEqual(parseFieldSelector("metadata.name=x,a!=b,c==d"), [
    { field: "a", equals: false, value: "b" },
    { field: "c", equals: true, value: "d" },
    { field: "metadata.name", equals: true, value: "x" },
  ]);
  assert.deepEqual(parseFieldSelector(""), []);
  assert.deepEqual(parseFieldSelector(",,"), []);
});

Deno.test("field selector: backslash escapes \\, , and = in values", () => {
  assert.deepEqual(parseFieldSelector("a=x\\,y\\=z\\\\"), [
    { field: "a", equals: true, value: "x,y=z\\" },
  ]);
});

Deno.test("field selector: what Go rejects is undefined", () => {
  for (const bad of ["a", "a=b=c", "a=\\q", "a=b\\", "=,x"]) {
    assert.equal(parseFieldSelector(bad), undefined, bad);
  }
});
