import assert from "node:assert/strict";
import { startFixture } from "../support/sidecar_fixture.ts";
import { lastWatchUrl, openWatch, ROUTING } from "../support/multicluster.ts";
import { decodeResourceVersion } from "../../lib/kube/resource_version.ts";

Deno.test("multi-cluster: a WATCH over a spread set merges events of both", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const watch = openWatch(
      f,
      "/api/v1/namespaces/spread-1/configmaps?watch=1&resourceVersion=0",
    );
    await watch.head;
    const east = f.remotes.get("east")!;
    const west = f.remotes.get("west")!;
    await east.waitForWatches(1);
    await west.waitForWatches(1);
    east.pushWatchEvent({
      type: "ADDED",
      object: {
        kind: "ConfigMap",
        metadata: { name: "a", namespace: "spread-1", resourceVersion: "7" },
      },
    });
    await watch.until(1);
    west.pushWatchEvent({
      type: "ADDED",
      object: {
        kind: "ConfigMap",
        metadata: { name: "b", namespace: "spread-1", resourceVersion: "3" },
      },
    });
    await watch.until(2);
    const [a, b] = watch.lines as Array<
      {
        object: {
          metadata: {
            annotations: Record<string, string>;
            resourceVersion: string;
          };
        };
      }
    >;
    assert.equal(a.object.metadata.annotations["mca.io/cluster"], "east");
    assert.equal(b.object.metadata.annotations["mca.io/cluster"], "west");
    assert.deepEqual(decodeResourceVersion(b.object.metadata.resourceVersion), {
      east: "7",
      west: "3",
    });

    // resuming from that version asks each cluster from its own version
    const resumed = openWatch(
      f,
      `/api/v1/namespaces/spread-1/configmaps?watch=1&resourceVersion=${b.object.metadata.resourceVersion}`,
    );
    await resumed.head;
    await east.waitForWatches(2);
    assert.match(await lastWatchUrl(f, "east"), /resourceVersion=7/);
    assert.match(await lastWatchUrl(f, "west"), /resourceVersion=3/);
    // one cluster ending its stream ends the merged one
    east.closeWatches();
    await watch.ended;
    await resumed.ended;
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: a WATCH from a foreign resourceVersion gets 410 Gone", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const watch = openWatch(
      f,
      "/api/v1/namespaces/spread-1/configmaps?watch=1&resourceVersion=12345",
    );
    await watch.ended;
    assert.equal(watch.lines.length, 1);
    const event = watch.lines[0] as {
      type: string;
      object: { code: number; reason: string };
    };
    assert.equal(event.type, "ERROR");
    assert.equal(event.object.code, 410);
    assert.equal(event.object.reason, "Expired");
  } finally {
    await f.close();
  }
});
