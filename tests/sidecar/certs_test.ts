import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import forge from "node-forge";
import { prepareCertificates } from "../../lib/sidecar/certs.ts";

const ROOT = new URL("../../tmp/", import.meta.url).pathname;

Deno.test("certs: a leaf for loopback names, signed by a CA that is kept", async () => {
  const dir = await Deno.makeTempDir({ dir: ROOT, prefix: "certs-" });
  try {
    const first = await prepareCertificates(dir);
    assert.equal(first.caReused, false);
    const ca = new X509Certificate(first.ca.certPem);
    const leaf = new X509Certificate(first.server.certPem);
    assert.ok(ca.ca);
    assert.ok(!leaf.ca, "the serving certificate must not be a CA");
    assert.ok(leaf.verify(ca.publicKey));
    assert.ok(ca.verify(ca.publicKey), "the CA is validly self-signed");
    assert.ok(leaf.checkIssued(ca));
    assert.equal(leaf.checkIP("127.0.0.1"), "127.0.0.1");
    assert.equal(leaf.checkIP("::1"), "::1");
    assert.equal(leaf.checkHost("localhost"), "localhost");
    assert.equal(leaf.checkIP("10.0.0.1"), undefined);
    const eku = forge.pki.certificateFromPem(first.server.certPem)
      .getExtension("extKeyUsage") as { serverAuth?: boolean } | null;
    assert.equal(eku?.serverAuth, true);
    assert.equal((await Deno.stat(`${dir}/ca.key`)).mode! & 0o777, 0o600);

    const second = await prepareCertificates(dir);
    assert.equal(second.caReused, true);
    assert.equal(second.ca.certPem, first.ca.certPem);
    assert.notEqual(second.server.certPem, first.server.certPem);
    assert.equal(
      second.server.keyPem,
      first.server.keyPem,
      "the serving key is kept, so a restart only signs",
    );
    assert.equal((await Deno.stat(`${dir}/server.key`)).mode! & 0o777, 0o600);
    assert.ok(new X509Certificate(second.server.certPem).verify(ca.publicKey));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("certs: a damaged or mismatched stored CA is replaced", async () => {
  const dir = await Deno.makeTempDir({ dir: ROOT, prefix: "certs-" });
  try {
    const first = await prepareCertificates(dir);
    await Deno.writeTextFile(`${dir}/ca.crt`, "not a certificate");
    const second = await prepareCertificates(dir);
    assert.equal(second.caReused, false);
    const other = await Deno.makeTempDir({ dir: ROOT, prefix: "certs-" });
    const unrelated = await prepareCertificates(other);
    await Deno.remove(other, { recursive: true });
    await Deno.writeTextFile(`${dir}/ca.key`, unrelated.ca.keyPem);
    const third = await prepareCertificates(dir);
    assert.equal(third.caReused, false);
    assert.notEqual(third.ca.certPem, first.ca.certPem);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
