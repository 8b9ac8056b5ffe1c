import assert from "node:assert/strict";
import { request } from "node:https";
import {
  appCall,
  type Fixture,
  startFixture,
} from "./support/sidecar_fixture.ts";
import { decodeResourceVersion } from "../lib/resource_version.ts";

const ROUTING = `
rules:
  - name: mapped
    match: {namespaces: [app-ns]}
    cluster: east
    namespace: remote-ns
  - name: spread
    match: {namespaces: ["spread-*"]}
    clusters: [east, west]
    strategy: round-robin
  - name: failover
    match: {namespaces: [ha]}
    clusters: [east, west]
`;

function calls(f: Fixture) {
  return f.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "api call");
}

/** Resolves once `predicate` holds on the fixture's log lines. */
async function untilLogged(
  f: Fixture,
  predicate: (line: Record<string, unknown>) => boolean,
) {
  const deadline = Date.now() + 10_000;
  while (!f.logs.some((l) => predicate(JSON.parse(l)))) {
    if (Date.now() > deadline) throw new Error("expected log line never came");
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("multi-cluster: calls no rule matches stay local", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/other/configmaps/x",
    );
    assert.equal(answer.status, 200);
    assert.equal(f.upstream.requests.length, 1);
    assert.equal(calls(f)[0].cluster, "local");
    const discovery = await appCall(f, "GET", "/version");
    assert.equal(discovery.status, 200);
    assert.equal(calls(f)[1].cluster, "local");
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: a namespace mapped to another one, both ways", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/app-ns/configmaps/cfg",
    );
    assert.equal(answer.status, 200);
    const east = f.remotes.get("east")!;
    assert.equal(
      east.requests.at(-1)!.url,
      "/api/v1/namespaces/remote-ns/configmaps/cfg",
    );
    assert.equal(
      east.requests.at(-1)!.headers.authorization,
      "Bearer fake-upstream-sa-token",
    );
    assert.equal(
      JSON.parse(answer.text).metadata.namespace,
      "app-ns",
      "the app never sees remote-ns",
    );
    const list = JSON.parse(
      (await appCall(f, "GET", "/api/v1/namespaces/app-ns/configmaps")).text,
    );
    assert.deepEqual(
      list.items.map((i: { metadata: { namespace: string } }) =>
        i.metadata.namespace
      ),
      ["app-ns", "app-ns"],
    );
    assert.equal(calls(f).at(-1).cluster, "east");
    assert.equal(f.upstream.requests.length, 0, "nothing went to local");
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: a LIST over a spread set is merged and marked", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/spread-1/configmaps",
    );
    assert.equal(answer.status, 200, answer.text);
    const list = JSON.parse(answer.text);
    assert.equal(list.kind, "ConfigMapList");
    assert.equal(list.items.length, 4);
    const where = list.items.map((
      i: { metadata: { annotations: Record<string, string> } },
    ) => i.metadata.annotations["mca.io/cluster"]);
    assert.deepEqual(where.sort(), ["east", "east", "west", "west"]);
    assert.deepEqual(decodeResourceVersion(list.metadata.resourceVersion), {
      east: "100",
      west: "100",
    });
    assert.deepEqual(
      decodeResourceVersion(list.items[0].metadata.resourceVersion),
      { [where[0]]: "100" },
    );
    assert.equal(calls(f).at(-1).cluster, "east+west");
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: a paginated LIST walks the clusters behind one token", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const first = JSON.parse(
      (await appCall(
        f,
        "GET",
        "/api/v1/namespaces/spread-1/configmaps?limit=10",
      )).text,
    );
    assert.equal(first.items[0].metadata.annotations["mca.io/cluster"], "east");
    assert.ok(first.metadata.continue, "a token to the next cluster");
    const second = JSON.parse(
      (await appCall(
        f,
        "GET",
        `/api/v1/namespaces/spread-1/configmaps?limit=10&continue=${first.metadata.continue}`,
      )).text,
    );
    assert.equal(
      second.items[0].metadata.annotations["mca.io/cluster"],
      "west",
    );
    assert.equal(second.metadata.continue, undefined);
    assert.deepEqual(decodeResourceVersion(second.metadata.resourceVersion), {
      east: "100",
      west: "100",
    });
    const bad = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/spread-1/configmaps?limit=1&continue=garbage",
    );
    assert.equal(bad.status, 410);
  } finally {
    await f.close();
  }
});

function openWatch(f: Fixture, path: string) {
  const lines: Record<string, unknown>[] = [];
  let wake: (() => void) | undefined;
  const { promise: head, resolve: gotHead } = Promise.withResolvers<
    Record<string, string | string[] | undefined>
  >();
  const { promise: ended, resolve: end } = Promise.withResolvers<void>();
  const req = request({
    host: "127.0.0.1",
    port: f.port,
    path,
    ca: f.appCa(),
    agent: false,
  }, (res) => {
    gotHead(res.headers);
    let buffer = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        lines.push(JSON.parse(buffer.slice(0, nl)));
        buffer = buffer.slice(nl + 1);
        wake?.();
      }
    });
    res.on("end", () => end());
  });
  req.on("error", () => end());
  req.end();
  return {
    head,
    lines,
    ended,
    until(n: number): Promise<void> {
      if (lines.length >= n) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      wake = () => lines.length >= n && resolve();
      return promise;
    },
    close: () => req.destroy(),
  };
}

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

async function lastWatchUrl(f: Fixture, cluster: string): Promise<string> {
  // a watch request is recorded once its (empty) body has been read
  const remote = f.remotes.get(cluster)!;
  await remote.waitForRequests(2);
  return remote.requests.filter((r) => r.url.includes("watch=")).at(-1)!.url;
}

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

Deno.test("multi-cluster: failover to the next healthy cluster and back", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    assert.equal(
      (await appCall(f, "GET", "/api/v1/namespaces/ha/configmaps/x")).status,
      200,
    );
    assert.equal(calls(f).at(-1).cluster, "east");
    await f.remotes.get("east")!.close();
    await untilLogged(
      f,
      (l) =>
        l.msg === "cluster health" && l.cluster === "east" &&
        l.healthy === false,
    );
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/ha/configmaps/x",
    );
    assert.equal(answer.status, 200);
    assert.equal(calls(f).at(-1).cluster, "west");
    // a fan-out read says which cluster it lacks
    const partial = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/spread-2/configmaps",
    );
    assert.equal(partial.status, 200);
    assert.match(
      String(partial.headers.warning),
      /cluster east is unavailable/,
    );
    assert.equal(JSON.parse(partial.text).items.length, 2);
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: configuration reload, and an invalid one is kept out", async () => {
  const f = await startFixture({
    remotes: ["east", "west"],
    routing: "rules: []\n",
  });
  try {
    await appCall(f, "GET", "/api/v1/namespaces/moved/configmaps/x");
    assert.equal(calls(f).at(-1).cluster, "local");
    const tmp = `${f.routingFile}.new`;
    await Deno.writeTextFile(
      tmp,
      "rules:\n  - {match: {namespaces: [moved]}, cluster: west}\n",
    );
    await Deno.rename(tmp, f.routingFile);
    await untilLogged(f, (l) => l.msg === "routing configuration loaded");
    await appCall(f, "GET", "/api/v1/namespaces/moved/configmaps/x");
    assert.equal(calls(f).at(-1).cluster, "west");
    await Deno.writeTextFile(
      tmp,
      "rules:\n  - {match: {namespaces: [moved]}, cluster: mars}\n",
    );
    await Deno.rename(tmp, f.routingFile);
    await untilLogged(
      f,
      (l) =>
        l.msg === "routing configuration rejected; keeping the previous one",
    );
    const rejected = f.logs.map((l) => JSON.parse(l)).find((l) =>
      l.level === "error"
    );
    assert.match(rejected.error, /routing.yaml:2: unknown cluster "mars"/);
    await appCall(f, "GET", "/api/v1/namespaces/moved/configmaps/x");
    assert.equal(
      calls(f).at(-1).cluster,
      "west",
      "the last good configuration is still in force",
    );
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: an invalid configuration at start is a clear start-up error", async () => {
  await assert.rejects(
    () =>
      startFixture({
        remotes: ["east"],
        routing: "rules:\n  - cluster: west\n",
      }),
    /routing.yaml:2: unknown cluster "west" in rule rule-1 \(known: east, local\)/,
  );
});

Deno.test("multi-cluster: creates on a round-robin set alternate clusters", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    for (let i = 0; i < 4; i++) {
      const answer = await appCall(
        f,
        "POST",
        "/api/v1/namespaces/spread-1/configmaps",
        {
          body: JSON.stringify({ metadata: { name: `c${i}` } }),
          headers: { "content-type": "application/json" },
        },
      );
      assert.equal(answer.status, 201);
    }
    assert.deepEqual(calls(f).map((l) => l.cluster), [
      "east",
      "west",
      "east",
      "west",
    ]);
    // exec on a spread set is a call by name, not a create
    const exec = calls(f).length;
    await appCall(f, "POST", "/api/v1/namespaces/spread-1/pods/p/eviction", {
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    assert.equal(
      calls(f)[exec].cluster,
      "east+west",
      "asked cluster by cluster",
    );
  } finally {
    await f.close();
  }
});
