/**
 * Protobuf request bodies through the sidecar, against fake clusters: the
 * rewrites MCA makes to a JSON body (cluster mark and composite version
 * taken back on a spread set, namespace mapped) made on the protobuf body,
 * which reaches the cluster as the oracle encodes the expected object
 * (tests/support/k8s_protobuf_oracle.ts); an unreadable one is refused.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { appCall, startFixture } from "../support/sidecar_fixture.ts";
import { calls, ROUTING } from "../support/multicluster.ts";
import { oracleBody } from "../support/k8s_protobuf_oracle.ts";
import { encodeResourceVersion } from "../../lib/kube/resource_version.ts";

const PROTOBUF = "application/vnd.kubernetes.protobuf";

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function configMap(meta: Record<string, unknown>) {
  return oracleBody("ConfigMap", {
    metadata: { name: "c", uid: "u-1", generation: 3, ...meta },
    data: { k: "v" },
  });
}

Deno.test("protobuf: an update on a spread set goes to the marked cluster with its own version", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const sent = configMap({
      namespace: "spread-1",
      resourceVersion: encodeResourceVersion({ west: "42" }),
      labels: { app: "x" },
      annotations: { "mca.io/cluster": "west", keep: "me" },
    });
    const answer = await appCall(
      f,
      "PUT",
      "/api/v1/namespaces/spread-1/configmaps/c",
      {
        body: sent,
        headers: {
          "content-type": PROTOBUF,
          accept: `${PROTOBUF},application/json`,
        },
      },
    );
    assert.equal(answer.status, 200, answer.text);
    assert.equal(calls(f).at(-1).cluster, "west");
    const got = f.remotes.get("west")!.requests.at(-1)!;
    assert.equal(got.method, "PUT");
    assert.equal(got.headers["content-type"], PROTOBUF);
    const expected = configMap({
      namespace: "spread-1",
      resourceVersion: "42",
      labels: { app: "x" },
      annotations: { keep: "me" },
    });
    assert.equal(
      got.bodySha256,
      sha256(expected),
      "the cluster got its own version, no mark",
    );
    assert.equal(Number(got.headers["content-length"]), expected.length);
  } finally {
    await f.close();
  }
});

Deno.test("protobuf: a create in a mapped namespace carries the cluster's namespace", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const answer = await appCall(
      f,
      "POST",
      "/api/v1/namespaces/app-ns/configmaps",
      {
        body: configMap({ namespace: "app-ns" }),
        headers: { "content-type": PROTOBUF },
      },
    );
    assert.equal(answer.status, 201, answer.text);
    const got = f.remotes.get("east")!.requests.at(-1)!;
    assert.equal(got.url, "/api/v1/namespaces/remote-ns/configmaps");
    assert.equal(got.bodySha256, sha256(configMap({ namespace: "remote-ns" })));
  } finally {
    await f.close();
  }
});

Deno.test("protobuf: a delete's DeleteOptions body on a namespace-mapped path is sent as it came", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const options = oracleBody(
      "DeleteOptions",
      { gracePeriodSeconds: 0 },
      "meta.k8s.io/v1",
    );
    const answer = await appCall(
      f,
      "DELETE",
      // (on a spread set every fake cluster holds `c`: a 409 until the body
      // names one, which a protobuf DeleteOptions cannot)
      "/api/v1/namespaces/app-ns/configmaps/c",
      {
        body: options,
        // node:http frames a DELETE body only with a declared length
        headers: { "content-type": PROTOBUF, "content-length": options.length },
      },
    );
    const deletes = [...f.remotes.values()].flatMap((r) => r.requests)
      .filter((r) => r.method === "DELETE");
    assert.ok(deletes.length >= 1, `${answer.status} ${answer.text}`);
    for (const d of deletes) assert.equal(d.bodySha256, sha256(options));
  } finally {
    await f.close();
  }
});

Deno.test("protobuf: an unreadable body MCA must rewrite is a 400, sent nowhere", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    for (
      const body of [
        new TextEncoder().encode("not protobuf"),
        Uint8Array.of(0x6b, 0x38, 0x73, 0, 0x12, 0x7f),
      ]
    ) {
      const answer = await appCall(
        f,
        "POST",
        "/api/v1/namespaces/spread-1/configmaps",
        {
          body,
          headers: { "content-type": PROTOBUF },
        },
      );
      assert.equal(answer.status, 400, answer.text);
      const status = JSON.parse(answer.text);
      assert.equal(status.reason, "BadRequest");
      assert.match(
        status.message,
        /^mca: the protobuf request body cannot be read/,
      );
    }
    for (const r of f.remotes.values()) assert.equal(r.requests.length, 0);
  } finally {
    await f.close();
  }
});

Deno.test("protobuf: an answer MCA cannot rewrite is a 502 naming the cluster, never passed on", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const accept = `${PROTOBUF},application/json`;
    // one cluster (mapped namespace): the object is unreadable
    const one = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/app-ns/configmaps/pb-bad",
      {
        headers: { accept },
      },
    );
    assert.equal(one.status, 502, one.text);
    assert.equal(
      f.remotes.get("east")!.requests.at(-1)!.headers.accept,
      accept,
    );
    assert.match(
      JSON.parse(one.text).message,
      /^mca: cluster east answered a protobuf body mca cannot rewrite/,
    );
    // a merged LIST: no list without that cluster's objects
    const merged = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/spread-pb-bad/configmaps",
      {
        headers: { accept },
      },
    );
    assert.equal(merged.status, 502, merged.text);
    assert.match(
      JSON.parse(merged.text).message,
      /^mca: cluster east answered a protobuf body mca cannot rewrite/,
    );
  } finally {
    await f.close();
  }
});
