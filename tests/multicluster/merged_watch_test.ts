import assert from "node:assert/strict";
import {
  floodWatches,
  openUnreadCall,
  startFixture,
} from "../support/sidecar_fixture.ts";
import { startFakeUpstream } from "../support/fake_upstream.ts";
import { lastWatchUrl, openWatch, ROUTING } from "../support/multicluster.ts";
import {
  decodeResourceVersion,
  encodeResourceVersion,
} from "../../lib/kube/resource_version.ts";

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
    // one cluster's stream ending leaves the merged ones open: that cluster
    // is watched again from its own last version, inside the same stream
    const before = east.requests.length;
    east.closeWatches();
    await east.waitForWatches(2);
    await east.waitForRequests(before + 2);
    const again = east.requests.slice(before).map((r) => r.url);
    assert.equal(again.length, 2, again.join(" "));
    for (const u of again) assert.match(u, /resourceVersion=7(&|$)/);
    assert.equal(west.openWatches(), 2, "west's watches were left alone");
    east.pushWatchEvent({
      type: "MODIFIED",
      object: {
        kind: "ConfigMap",
        metadata: { name: "a", namespace: "spread-1", resourceVersion: "8" },
      },
    });
    await watch.until(3);
    const c = watch.lines[2] as typeof a;
    assert.deepEqual(decodeResourceVersion(c.object.metadata.resourceVersion), {
      east: "8",
      west: "3",
    });
    // an ERROR (a 410: east's version is gone) ends the merged watch
    east.pushWatchEvent({
      type: "ERROR",
      object: { kind: "Status", code: 410, reason: "Expired" },
    });
    await watch.ended;
    await resumed.ended;
    assert.equal((watch.lines.at(-1) as { type: string }).type, "ERROR");
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

Deno.test("multi-cluster: a merged WATCH ends at the app's timeoutSeconds, though its clusters resume", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const started = Date.now();
    const watch = openWatch(
      f,
      "/api/v1/namespaces/spread-1/configmaps?watch=1&timeoutSeconds=1",
    );
    await watch.head;
    const east = f.remotes.get("east")!;
    await east.waitForRequests(1);
    assert.match(east.requests[0].url, /timeoutSeconds=1/);
    await watch.ended;
    assert.ok(Date.now() - started >= 900, "not before its time");
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: a merged WATCH stays open while a cluster is down and resumes it from its own version when it returns", async () => {
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
    const event = (name: string, rv: string) => ({
      type: "ADDED",
      object: {
        kind: "ConfigMap",
        metadata: { name, namespace: "spread-1", resourceVersion: rv },
      },
    });
    west.pushWatchEvent(event("w1", "3"));
    await watch.until(1);
    await west.close(); // west goes away: its stream fails, connections refused
    east.pushWatchEvent(event("e1", "7"));
    await watch.until(2);
    // west comes back on the same address
    const back = await startFakeUpstream({ port: west.port });
    f.remotes.set("west", back);
    await back.waitForWatches(1, 10_000);
    await back.waitForRequests(1);
    assert.match(back.requests.at(-1)?.url ?? "", /resourceVersion=3(&|$)/);
    back.pushWatchEvent(event("w2", "4"));
    await watch.until(3);
    const last = watch.lines[2] as {
      object: { metadata: { name: string; resourceVersion: string } };
    };
    assert.equal(last.object.metadata.name, "w2", "in the same stream");
    assert.deepEqual(
      decodeResourceVersion(last.object.metadata.resourceVersion),
      { east: "7", west: "4" },
    );
    watch.close();
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: on a partial rule, a watch from a list that left a cluster out starts it from now", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const rv = encodeResourceVersion({ east: "5" });
    const strict = openWatch(
      f,
      `/api/v1/namespaces/spread-1/configmaps?watch=1&resourceVersion=${rv}`,
    );
    await strict.ended;
    assert.equal((strict.lines[0] as { type: string }).type, "ERROR");
    const watch = openWatch(
      f,
      `/api/v1/namespaces/partial-1/configmaps?watch=1&resourceVersion=${rv}`,
    );
    await watch.head;
    const east = f.remotes.get("east")!;
    const west = f.remotes.get("west")!;
    await east.waitForRequests(1);
    await west.waitForRequests(1);
    assert.match(east.requests.at(-1)!.url, /resourceVersion=5(&|$)/);
    assert.doesNotMatch(west.requests.at(-1)!.url, /resourceVersion=/);
    watch.close();
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: an app that stops reading a merged WATCH loses it past 16 MiB, and every cluster's watch is closed", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  const conn = await openUnreadCall(
    f,
    "/api/v1/namespaces/spread-1/configmaps?watch=1&resourceVersion=0",
  );
  try {
    const east = f.remotes.get("east")!;
    const west = f.remotes.get("west")!;
    await east.waitForWatches(1);
    await west.waitForWatches(1);
    await floodWatches(east);
    await east.waitForAborts(1, 20_000);
    await west.waitForAborts(1, 20_000);
  } finally {
    conn.close();
    await f.close();
  }
});

Deno.test("multi-cluster: an app that stops reading a namespace-mapped WATCH loses it past 16 MiB, and the cluster's watch is closed", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  const conn = await openUnreadCall(
    f,
    "/api/v1/namespaces/app-ns/configmaps?watch=1",
  );
  try {
    const east = f.remotes.get("east")!;
    await east.waitForWatches(1);
    await floodWatches(east);
    await east.waitForAborts(1, 20_000);
  } finally {
    conn.close();
    await f.close();
  }
});
