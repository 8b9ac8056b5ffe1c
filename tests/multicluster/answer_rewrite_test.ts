import assert from "node:assert/strict";
import {
  mapBack,
  parseJsonBytes,
  rewriteAnswer,
  rewriteJsonBytes,
  rewriteJsonLine,
  warning,
} from "../../lib/multicluster/answer_rewrite.ts";
import { decodeResourceVersion } from "../../lib/kube/resource_version.ts";

const NS = { app: "a", remote: "b" };

function object() {
  return {
    kind: "ConfigMap",
    metadata: { name: "x", namespace: "b", resourceVersion: "4" },
  };
}

Deno.test("answer rewrite: namespace mapped back, marked only when a cluster is given", () => {
  const plain = object();
  rewriteAnswer(plain, { namespace: NS });
  assert.deepEqual(plain.metadata, {
    name: "x",
    namespace: "a",
    resourceVersion: "4",
  });
  const marked = object();
  rewriteAnswer(marked, { cluster: "west" });
  const meta = marked.metadata as Record<string, unknown>;
  assert.equal(meta.namespace, "b", "no mapping, no change");
  assert.deepEqual(meta.annotations, { "mca.io/cluster": "west" });
  assert.deepEqual(decodeResourceVersion(meta.resourceVersion as string), {
    west: "4",
  });
  const untouched = object();
  mapBack(untouched);
  assert.deepEqual(untouched, object());
});

Deno.test("answer rewrite: bytes and watch lines; what is not JSON passes or drops", () => {
  const edit = (v: unknown) => rewriteAnswer(v, { namespace: NS });
  const raw = new TextEncoder().encode(JSON.stringify(object()));
  const out = parseJsonBytes(rewriteJsonBytes(raw, edit)) as ReturnType<
    typeof object
  >;
  assert.equal(out.metadata.namespace, "a");
  const text = new TextEncoder().encode("plain text");
  assert.equal(rewriteJsonBytes(text, edit), text, "passed on unchanged");
  assert.equal(parseJsonBytes(text), undefined);

  const event = JSON.stringify({ type: "ADDED", object: object() });
  const line = rewriteJsonLine(event, edit)!;
  assert.ok(line.endsWith("}\n"));
  assert.equal(JSON.parse(line).object.metadata.namespace, "a");
  assert.equal(rewriteJsonLine("{broken", edit), undefined);
});

Deno.test("answer rewrite: the Warning names every cluster left out", () => {
  assert.equal(
    warning(["east", "west"]),
    '299 - "mca: cluster east is unavailable; this answer lacks its objects", ' +
      '299 - "mca: cluster west is unavailable; this answer lacks its objects"',
  );
  assert.equal(warning([]), "");
  assert.equal(
    warning(["east"], ["west"]),
    '299 - "mca: cluster east is unavailable; this answer lacks its objects", ' +
      '299 - "mca: cluster west is left out by this Pod\'s call policy; this answer lacks its objects"',
  );
});
