import assert from "node:assert/strict";
import {
  createPublicKey,
  generateKeyPairSync,
  X509Certificate,
} from "node:crypto";
import { certificatePem, issueCertificate } from "../../lib/sidecar/x509.ts";
import { opensslText } from "../support/openssl.ts";
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
    const text = await opensslText(first.server.certPem);
    assert.match(
      text,
      /Extended Key Usage: *\n *TLS Web Server Authentication/,
    );
    assert.match(text, /Public Key Algorithm: id-ecPublicKey/);
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

Deno.test("certs: a stored RSA CA (an older mca's) is kept and signs the new ECDSA leaf", async () => {
  const dir = await Deno.makeTempDir({ dir: ROOT, prefix: "certs-" });
  try {
    const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const caPem = certificatePem(issueCertificate({
      subject: [["CN", "mca-ca-old"], ["O", "MCA sidecar"]],
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3000 * 86_400_000),
      ca: true,
    }, { publicKey: createPublicKey(key), signingKey: key }));
    await Deno.writeTextFile(`${dir}/ca.crt`, caPem);
    await Deno.writeTextFile(
      `${dir}/ca.key`,
      String(key.export({ type: "pkcs1", format: "pem" })),
    );
    const certs = await prepareCertificates(dir);
    assert.equal(certs.caReused, true);
    const ca = new X509Certificate(caPem);
    const leaf = new X509Certificate(certs.server.certPem);
    assert.ok(leaf.verify(ca.publicKey));
    assert.equal(leaf.issuer, ca.subject);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
