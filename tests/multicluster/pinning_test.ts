import assert from "node:assert/strict";
import { appCall, startFixture } from "../support/sidecar_fixture.ts";
import { lastWatchUrl, openWatch, ROUTING } from "../support/multicluster.ts";
import {
  decodeResourceVersion,
  encodeResourceVersion,
} from "../../lib/kube/resource_version.ts";
import {
  pinnedContinue,
  pinnedTarget,
} from "../../lib/multicluster/pinning.ts";
import type { CallEnd } from "../../lib/observe/observer.ts";

const HA = "/api/v1/namespaces/ha/configmaps";

Deno.test("multi-cluster: first-healthy versions name their cluster; after a switch the old cluster's are 410, never sent to the other", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const list = await appCall(f, "GET", HA);
    assert.equal(list.status, 200, list.text);
    const body = JSON.parse(list.text);
    assert.deepEqual(decodeResourceVersion(body.metadata.resourceVersion), {
      east: "100",
    });
    assert.equal(body.items[0].metadata.annotations["mca.io/cluster"], "east");
    const rv = body.metadata.resourceVersion;
    // a watch from it asks east from its own version
    const watch = openWatch(f, `${HA}?watch=1&resourceVersion=${rv}`);
    await watch.head;
    const asked = new URL(await lastWatchUrl(f, "east"), "https://x");
    assert.equal(asked.searchParams.get("resourceVersion"), "100");
    watch.close();

    await f.remotes.get("east")!.close();
    const before = f.remotes.get("west")!.requests.length;
    // before: west was asked resourceVersion=100 (east's) and replayed its own history
    const relist = await appCall(f, "GET", `${HA}?resourceVersion=${rv}`);
    assert.equal(relist.status, 410, relist.text);
    assert.equal(JSON.parse(relist.text).reason, "Expired");
    const rewatch = openWatch(f, `${HA}?watch=1&resourceVersion=${rv}`);
    await rewatch.ended;
    assert.equal(rewatch.lines.length, 1);
    assert.equal(rewatch.lines[0].type, "ERROR");
    assert.equal((rewatch.lines[0].object as { code: number }).code, 410);
    assert.equal(
      f.remotes.get("west")!.requests.slice(before).filter((r) =>
        r.url.includes("resourceVersion=100")
      ).length,
      0,
      "no version of east reached west",
    );
    // the client relists from scratch: west's objects, west's version
    const fresh = await appCall(f, "GET", HA);
    assert.equal(fresh.status, 200, fresh.text);
    assert.deepEqual(
      decodeResourceVersion(JSON.parse(fresh.text).metadata.resourceVersion),
      { west: "100" },
    );
    // an object read from east, written back now that west serves: 409
    const update = await appCall(f, "PUT", `${HA}/alpha`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        kind: "ConfigMap",
        apiVersion: "v1",
        metadata: {
          name: "alpha",
          namespace: "ha",
          resourceVersion: encodeResourceVersion({ east: "100" }),
          annotations: { "mca.io/cluster": "east" },
        },
      }),
    });
    assert.equal(update.status, 409, update.text);
    assert.match(JSON.parse(update.text).message, /read from cluster east/);
  } finally {
    await f.close();
  }
});

Deno.test("pinning: a page's continue token goes back only to the cluster that gave it", () => {
  const token = pinnedContinue("east", "own-token");
  const asked = pinnedTarget(`${HA}?limit=1&continue=${token}`, "east");
  assert.equal(
    new URL(asked!, "https://x").searchParams.get("continue"),
    "own-token",
  );
  assert.equal(
    pinnedTarget(`${HA}?limit=1&continue=${token}`, "west"),
    undefined,
  );
  assert.equal(pinnedTarget(`${HA}?limit=1&continue=raw`, "east"), undefined);
  const rv = encodeResourceVersion({ east: "7" });
  assert.equal(
    new URL(pinnedTarget(`${HA}?resourceVersion=${rv}`, "east")!, "https://x")
      .searchParams.get("resourceVersion"),
    "7",
  );
  assert.equal(
    pinnedTarget(`${HA}?resourceVersion=0`, "west"),
    `${HA}?resourceVersion=0`,
  );
});

Deno.test("multi-cluster: a first-healthy answer read and rewritten is still copied for the observers (audit)", async () => {
  const ends: CallEnd[] = [];
  const f = await startFixture({
    remotes: ["east", "west"],
    routing: ROUTING,
    observers: [{
      start: () => ({ responseBodyBytes: 4096, end: (e) => ends.push(e) }),
    }],
  });
  try {
    const answer = await appCall(f, "GET", `${HA}/alpha`);
    assert.equal(answer.status, 200);
    const copy = new TextDecoder().decode(ends.at(-1)!.responseBody);
    assert.equal(copy, answer.text, "the bytes the app got");
    assert.equal(ends.at(-1)!.responseBodyCut, false);
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: a first-healthy Table watch event's own version names its cluster", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const watch = openWatch(f, `${HA}?watch=1`);
    await watch.head;
    await f.remotes.get("east")!.waitForWatches(1);
    f.remotes.get("east")!.pushWatchEvent({
      type: "ADDED",
      object: {
        kind: "Table",
        apiVersion: "meta.k8s.io/v1",
        metadata: { resourceVersion: "120" },
        rows: [{
          cells: ["x"],
          object: {
            kind: "PartialObjectMetadata",
            metadata: { name: "x", namespace: "ha", resourceVersion: "120" },
          },
        }],
      },
    });
    await watch.until(1);
    const table = watch.lines[0].object as {
      metadata: { resourceVersion: string };
    };
    assert.deepEqual(decodeResourceVersion(table.metadata.resourceVersion), {
      east: "120",
    });
    watch.close();
  } finally {
    await f.close();
  }
});
