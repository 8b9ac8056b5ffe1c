import assert from "node:assert/strict";
import {
  CLUSTER_ANNOTATION,
  decorateObjects,
  objectLabels,
  rewriteBodyNamespace,
  rewriteTargetNamespace,
  undecorateObject,
} from "../../lib/multicluster/rewrite.ts";
import {
  decodeResourceVersion,
  encodeResourceVersion,
} from "../../lib/kube/resource_version.ts";

Deno.test("rewrite: namespace in paths, legacy watch paths and field selectors", () => {
  assert.equal(
    rewriteTargetNamespace(
      "/api/v1/namespaces/a/pods/p/log?follow=true",
      "a",
      "b",
    ),
    "/api/v1/namespaces/b/pods/p/log?follow=true",
  );
  assert.equal(
    rewriteTargetNamespace("/api/v1/watch/namespaces/a/configmaps", "a", "b"),
    "/api/v1/watch/namespaces/b/configmaps",
  );
  assert.equal(
    rewriteTargetNamespace("/apis/apps/v1/namespaces/a/deployments", "x", "y"),
    "/apis/apps/v1/namespaces/a/deployments",
    "another namespace is left alone",
  );
  assert.equal(
    rewriteTargetNamespace(
      "/api/v1/pods?fieldSelector=metadata.namespace%3Da,spec.nodeName%3Dn",
      "a",
      "b",
    ),
    "/api/v1/pods?fieldSelector=metadata.namespace%3Db%2Cspec.nodeName%3Dn",
  );
});

Deno.test("rewrite: namespace in objects, lists, Tables and watch events, both ways", () => {
  const list = {
    kind: "ConfigMapList",
    items: [{ metadata: { name: "x", namespace: "remote" } }, {
      metadata: { name: "y", namespace: "other" },
    }],
  };
  rewriteBodyNamespace(list, "remote", "app");
  assert.deepEqual(list.items.map((i) => i.metadata.namespace), [
    "app",
    "other",
  ]);
  const table = {
    kind: "Table",
    rows: [{ object: { metadata: { namespace: "remote" } } }],
  };
  rewriteBodyNamespace(table, "remote", "app");
  assert.equal(table.rows[0].object.metadata.namespace, "app");
  const event = {
    type: "MODIFIED",
    object: { metadata: { namespace: "remote" } },
  };
  rewriteBodyNamespace(event, "remote", "app");
  assert.equal(event.object.metadata.namespace, "app");
  const status = { kind: "Status", metadata: {}, details: { name: "x" } };
  rewriteBodyNamespace(status, "remote", "app");
  assert.deepEqual(status.metadata, {});
});

Deno.test("rewrite: decorate marks the cluster and makes versions composite; undecorate restores", () => {
  const object = {
    metadata: {
      name: "x",
      resourceVersion: "42",
      annotations: { keep: "me" } as Record<string, string>,
    },
  };
  decorateObjects(object, "east");
  assert.equal(object.metadata.annotations[CLUSTER_ANNOTATION], "east");
  assert.deepEqual(decodeResourceVersion(object.metadata.resourceVersion), {
    east: "42",
  });
  assert.equal(undecorateObject(object), "east");
  assert.deepEqual(object.metadata, {
    name: "x",
    resourceVersion: "42",
    annotations: { keep: "me" },
  });

  const event = {
    type: "ADDED",
    object: { metadata: { resourceVersion: "7" } },
  };
  decorateObjects(event, "west", { east: "42", west: "7" });
  assert.deepEqual(
    decodeResourceVersion(event.object.metadata.resourceVersion),
    { east: "42", west: "7" },
  );

  // a version alone names the cluster when it has one entry
  const update = {
    metadata: { resourceVersion: encodeResourceVersion({ west: "9" }) },
  };
  assert.equal(undecorateObject(update), "west");
  assert.deepEqual(update.metadata, { resourceVersion: "9" });
  // a multi-cluster version with no annotation cannot be pinned: dropped
  const vague = {
    metadata: {
      resourceVersion: encodeResourceVersion({ east: "1", west: "2" }),
    },
  };
  assert.equal(undecorateObject(vague), undefined);
  assert.deepEqual(vague.metadata, {});
  assert.equal(undecorateObject("not an object"), undefined);
});

Deno.test("rewrite: object labels for label rules", () => {
  assert.deepEqual(objectLabels({ metadata: { labels: { a: "1", b: 2 } } }), {
    a: "1",
  });
  assert.deepEqual(objectLabels({}), {});
  assert.deepEqual(objectLabels(null), {});
});
