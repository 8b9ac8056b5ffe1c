/**
 * The stale pooled socket of `tests/proxy/stale_socket_test.ts`, through a
 * whole sidecar (listener, pipeline, in-cluster upstream) as an app sees it:
 * the API server closes each connection on reading its second request.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startSidecar } from "../../lib/sidecar/run.ts";
import { writeProjectedVolume } from "../support/cluster.ts";
import { startRawUpstream } from "../support/raw_upstream.ts";
import { appCall } from "../support/sidecar_fixture.ts";

const TMP = new URL("../../tmp/", import.meta.url).pathname;
const PATH = "/api/v1/namespaces/team-a/configmaps/app-config";

Deno.test("sidecar: an API server closing pooled connections as calls go out costs an app's reads nothing, and its writes a prompt 503", async () => {
  const upstream = await startRawUpstream((head) => head.index === 1);
  await Deno.mkdir(TMP, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: TMP, prefix: "stale-" });
  await writeProjectedVolume(join(dir, "real-sa"), {
    token: "raw-upstream-token",
    "ca.crt": upstream.caPem,
    namespace: "team-a",
  });
  await Deno.mkdir(join(dir, "app-sa"));
  const sidecar = await startSidecar({
    saDir: join(dir, "real-sa"),
    mcaSaDir: join(dir, "app-sa"),
    stateDir: join(dir, "state"),
    hosts: ["127.0.0.1"],
    port: 0,
    env: {
      KUBERNETES_SERVICE_HOST: "127.0.0.1",
      KUBERNETES_SERVICE_PORT: upstream.url.port,
    },
    headTimeoutMs: 5000,
    log: () => {},
  });
  const app = {
    port: sidecar.proxy.port,
    appCa: () => Deno.readTextFileSync(join(dir, "app-sa", "ca.crt")),
  };
  try {
    for (let i = 0; i < 4; i++) {
      const got = await appCall(app, "GET", PATH);
      assert.equal(got.status, 200, got.text);
    }
    const reads = upstream.heads.filter((h) =>
      h.line === `GET ${PATH} HTTP/1.1`
    );
    // the race happened (a read was closed on) and each was sent again
    assert.ok(reads.some((h) => h.index > 1), JSON.stringify(reads));
    assert.equal(reads.filter((h) => h.index === 1).length, 4);
    const posted = await appCall(
      app,
      "POST",
      "/api/v1/namespaces/team-a/configmaps",
      {
        body: '{"kind":"ConfigMap"}',
        headers: { "content-type": "application/json" },
      },
    );
    const posts = upstream.heads.filter((h) => h.line.startsWith("POST "));
    // the POST went out on the pooled connection of the last read
    assert.equal(posts.length, 1, "a write must never be sent twice");
    assert.ok(posts[0].index > 1, JSON.stringify(posts));
    assert.equal(posted.status, 503, posted.text);
    assert.equal(JSON.parse(posted.text).reason, "ServiceUnavailable");
  } finally {
    await sidecar.close();
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});
