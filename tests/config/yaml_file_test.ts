import assert from "node:assert/strict";
import { isMap } from "yaml";
import {
  checkKeys,
  keyText,
  readYamlFile,
} from "../../lib/config/yaml_file.ts";
import { glob } from "../../lib/config/glob.ts";

class TestError extends Error {}
const opts = { file: "x.yaml", error: (m: string) => new TestError(m) };

Deno.test("yaml file: a syntax error names the file and line", () => {
  assert.throws(
    () => readYamlFile("a: 1\nb: [\n", opts),
    (e: Error) =>
      e instanceof TestError && /^x\.yaml:\d+: invalid YAML: /.test(e.message),
  );
});

Deno.test("yaml file: fail names the node's line, 1 without one", () => {
  const file = readYamlFile("a: 1\nb:\n  c: 2\n", opts);
  assert.ok(isMap(file.root));
  const b = file.root.get("b", true);
  assert.equal(file.line(b), 3);
  assert.equal(file.line(undefined), 1);
  assert.throws(() => file.fail(b, "bad b"), { message: "x.yaml:3: bad b" });
  assert.throws(() => file.fail(null, "bad"), { message: "x.yaml:1: bad" });
});

Deno.test("yaml file: an empty file has a null root", () => {
  assert.equal(readYamlFile("", opts).root, null);
});

Deno.test("yaml file: checkKeys fails at the first unknown key", () => {
  const file = readYamlFile("a: 1\nb: 2\nc: 3\n? [x]\n: 4\n", opts);
  assert.ok(isMap(file.root));
  const root = file.root;
  assert.deepEqual(root.items.map(keyText), ["a", "b", "c", ""]);
  const message = (key: string) => `unknown ${JSON.stringify(key)}`;
  checkKeys(root, ["a", "b", "c", ""], { fail: file.fail, message });
  assert.throws(
    () => checkKeys(root, new Set(["a", "c"]), { fail: file.fail, message }),
    { message: 'x.yaml:2: unknown "b"' },
  );
});

Deno.test("glob: * and ? match, everything else is literal", () => {
  assert.ok(glob("batch-*").test("batch-7"));
  assert.ok(!glob("batch-*").test("batch"));
  assert.ok(glob("a?c").test("abc"));
  assert.ok(!glob("a.c").test("abc"));
  assert.ok(!glob("team").test("team-b"));
  assert.ok(glob("ns/*").test("ns/a/b"));
});
