import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startWebhook } from "../../lib/webhook/server.ts";
import { issueServerCert, makeTestCa } from "../support/test_certs.ts";

const TMP = fileURLToPath(new URL("../../tmp/", import.meta.url));

async function setup() {
  const dir = join(TMP, `webhook-${crypto.randomUUID().slice(0, 8)}`);
  await Deno.mkdir(dir, { recursive: true });
  const ca = makeTestCa();
  const leaf = issueServerCert(ca);
  const certFile = join(dir, "tls.crt");
  const keyFile = join(dir, "tls.key");
  await Deno.writeTextFile(certFile, leaf.certPem);
  await Deno.writeTextFile(keyFile, leaf.keyPem);
  const hook = await startWebhook({
    host: "127.0.0.1",
    port: 0,
    certFile,
    keyFile,
    ownNamespace: "mca-system",
    defaults: {},
    certIntervalMs: 50,
  });
  const client = Deno.createHttpClient({ caCerts: [ca.certPem] });
  const url = `https://127.0.0.1:${hook.port}`;
  return { dir, ca, certFile, keyFile, hook, client, url };
}

const REVIEW = {
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  request: {
    uid: "u-9",
    kind: { group: "", version: "v1", kind: "Pod" },
    operation: "CREATE",
    namespace: "team",
    object: {
      metadata: { generateName: "x-" },
      spec: { containers: [{ name: "app" }] },
    },
  },
};

Deno.test("webhook server: /healthz, /inject, 400 for bad bodies (incl. > 10 MB), 404", async () => {
  const s = await setup();
  try {
    const health = await fetch(`${s.url}/healthz`, { client: s.client });
    assert.equal(await health.text(), "ok");
    const ok = await fetch(`${s.url}/inject`, {
      client: s.client,
      method: "POST",
      body: JSON.stringify(REVIEW),
    });
    assert.equal(ok.status, 200);
    const answer = await ok.json();
    assert.equal(answer.response.uid, "u-9");
    assert.equal(answer.response.patchType, "JSONPatch");
    for (const body of ["nope", "{}", "x".repeat(10 * 1024 * 1024 + 1)]) {
      const bad = await fetch(`${s.url}/inject`, {
        client: s.client,
        method: "POST",
        body,
      });
      assert.equal(bad.status, 400);
      assert.match(await bad.text(), /bad AdmissionReview/);
    }
    const missing = await fetch(`${s.url}/other`, { client: s.client });
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    s.client.close();
    await s.hook.close();
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("webhook server: a renewed certificate is served without a restart", async () => {
  const s = await setup();
  try {
    const ca2 = makeTestCa({ commonName: "renewed" });
    const leaf2 = issueServerCert(ca2);
    await Deno.writeTextFile(s.keyFile, leaf2.keyPem);
    await Deno.writeTextFile(s.certFile, leaf2.certPem);
    const client2 = Deno.createHttpClient({ caCerts: [ca2.certPem] });
    try {
      const deadline = Date.now() + 10_000;
      let served = false;
      while (!served && Date.now() < deadline) {
        served = await fetch(`${s.url}/healthz`, { client: client2 })
          .then((r) => r.text()).then((t) => t === "ok", () => false);
        if (!served) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(served, "the new certificate was never served");
    } finally {
      client2.close();
    }
  } finally {
    s.client.close();
    await s.hook.close();
    await Deno.remove(s.dir, { recursive: true });
  }
});
