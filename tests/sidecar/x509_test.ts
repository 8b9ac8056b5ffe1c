import assert from "node:assert/strict";
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  X509Certificate,
} from "node:crypto";
import { join } from "node:path";
import { opensslRun as run, opensslText } from "../support/openssl.ts";
import { certificatePem, issueCertificate } from "../../lib/sidecar/x509.ts";

const ROOT = new URL("../../tmp/", import.meta.url).pathname;

function keyPair(type: "ec" | "rsa"): { pub: KeyObject; priv: KeyObject } {
  const { privateKey } = type === "ec"
    ? generateKeyPairSync("ec", { namedCurve: "P-256" })
    : generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { priv: privateKey, pub: createPublicKey(privateKey) };
}

function chain(caType: "ec" | "rsa", options: { notAfter?: Date } = {}) {
  const ca = keyPair(caType);
  const leaf = keyPair("ec");
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = options.notAfter ?? new Date(Date.now() + 86_400_000);
  const caPem = certificatePem(issueCertificate({
    subject: [["CN", "test-ca"], ["O", "MCA tests"]],
    notBefore,
    notAfter,
    ca: true,
  }, { publicKey: ca.pub, signingKey: ca.priv }));
  const leafPem = certificatePem(issueCertificate({
    subject: [["CN", "mca"]],
    issuer: [["CN", "test-ca"], ["O", "MCA tests"]],
    notBefore,
    notAfter,
    ca: false,
    dns: ["localhost", "mca.example"],
    ips: ["127.0.0.1", "::1", "fd00:10:244::1a", "10.244.0.7"],
    issuerKey: ca.pub,
  }, { publicKey: leaf.pub, signingKey: ca.priv }));
  return { caPem, leafPem };
}

async function verify(caPem: string, leafPem: string) {
  const dir = await Deno.makeTempDir({ dir: ROOT, prefix: "x509-" });
  try {
    await Deno.writeTextFile(join(dir, "ca.pem"), caPem);
    await Deno.writeTextFile(join(dir, "leaf.pem"), leafPem);
    return await run([
      "verify",
      "-x509_strict",
      "-purpose",
      "sslserver",
      "-CAfile",
      join(dir, "ca.pem"),
      join(dir, "leaf.pem"),
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const caType of ["ec", "rsa"] as const) {
  Deno.test(`x509: a ${caType} CA and the leaf it signs pass openssl's strict server verification`, async () => {
    const { caPem, leafPem } = chain(caType);
    const verdict = await verify(caPem, leafPem);
    assert.equal(verdict.code, 0, verdict.stdout + verdict.stderr);
    const ca = await opensslText(caPem);
    assert.match(ca, /CA:TRUE, pathlen:0/);
    assert.match(ca, /Key Usage: critical\n *Certificate Sign, CRL Sign/);
    const leaf = await opensslText(leafPem);
    assert.match(leaf, /CA:FALSE/);
    assert.match(leaf, /Key Usage: critical\n *Digital Signature\n/);
    assert.match(
      leaf,
      /DNS:localhost, DNS:mca.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:FD00:10:244:0:0:0:0:1A, IP Address:10.244.0.7/,
    );
    assert.match(
      leaf,
      caType === "ec"
        ? /Signature Algorithm: ecdsa-with-SHA256/
        : /Signature Algorithm: sha256WithRSAEncryption/,
    );
    // the leaf's authority key id is the CA's subject key id
    const ski = ca.match(/Subject Key Identifier: *\n *([0-9A-F:]+)/)![1];
    const aki = leaf.match(/Authority Key Identifier: *\n *([0-9A-F:]+)/)![1];
    assert.equal(aki, ski);
    const x = new X509Certificate(leafPem);
    assert.ok(x.verify(new X509Certificate(caPem).publicKey));
    assert.equal(x.checkIP("fd00:10:244::1a"), "fd00:10:244::1a");
  });
}

Deno.test("x509: a tampered certificate fails verification; a date after 2049 is GeneralizedTime", async () => {
  const { caPem, leafPem } = chain("ec", {
    notAfter: new Date("2051-06-01T00:00:00Z"),
  });
  assert.match(await opensslText(leafPem), /Not After : Jun +1 00:00:00 2051/);
  const der = Uint8Array.from(
    atob(leafPem.replace(/-----[A-Z ]+-----|\n/g, "")),
    (c) => c.charCodeAt(0),
  );
  der[der.length - 40] ^= 0x01; // inside the signature
  const verdict = await verify(caPem, certificatePem(der));
  assert.notEqual(verdict.code, 0, "a flipped signature bit must not verify");
});

Deno.test("x509: a key type it cannot sign with is refused by name", () => {
  const { privateKey } = generateKeyPairSync("ed25519");
  const pub = createPublicKey(privateKey);
  assert.throws(
    () =>
      issueCertificate({
        subject: [["CN", "x"]],
        notBefore: new Date(),
        notAfter: new Date(),
        ca: true,
      }, {
        publicKey: pub,
        signingKey: createPrivateKey(
          privateKey.export({ type: "pkcs8", format: "pem" }),
        ),
      }),
    /cannot sign certificates with a ed25519 key/,
  );
});
