/**
 * MCA's own certificate authority and the proxy's serving certificate.
 *
 * Apps verify the proxy with the `ca.crt` MCA writes into their
 * service-account directory. The CA is created once per Pod and kept in a
 * directory only `mca` mounts, so that a restarted `mca` (the kubelet
 * restarts a sidecar in place) still presents a certificate the apps' already
 * loaded `ca.crt` verifies. The serving certificate is a separate leaf
 * (CA:FALSE): rustls-based clients reject a CA certificate used as a server
 * certificate.
 *
 * X.509 is built with node-forge; keys come from `node:crypto` (native, and
 * generated concurrently) because forge's own RSA key generation is slow.
 *
 * @module
 */

import {
  generateKeyPair,
  randomBytes,
  sign,
  X509Certificate,
} from "node:crypto";
import forge from "node-forge";
import { join } from "node:path";
import { writeFileAtomic } from "./files.ts";

/** A certificate and its private key, both PEM. */
export interface KeyPair {
  certPem: string;
  keyPem: string;
}

/** Names the serving certificate must carry. */
export interface ServerNames {
  dns: string[];
  ips: string[];
}

/** Every name an in-Pod client may dial: the env host and the usual names. */
export const DEFAULT_SERVER_NAMES: ServerNames = {
  dns: ["localhost"],
  ips: ["127.0.0.1", "::1"],
};

const CA_CERT_FILE = "ca.crt";
const CA_KEY_FILE = "ca.key";
const LEAF_KEY_FILE = "server.key";
const DAY_MS = 24 * 60 * 60 * 1000;
/** The CA outlives any Pod; apps load it once and never reload it. */
const CA_VALIDITY_DAYS = 3650;
/** The leaf is re-issued at every start of `mca`. */
const LEAF_VALIDITY_DAYS = 397;

function rsaKeyPem(): Promise<string> {
  const { promise, resolve, reject } = Promise.withResolvers<string>();
  generateKeyPair("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
  }, (error, _publicKey, privateKey) => {
    if (error) reject(error);
    else resolve(privateKey);
  });
  return promise;
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f; // positive, as X.509 requires
  return bytes.toString("hex");
}

function baseCertificate(
  keyPem: string,
  validityDays: number,
): [forge.pki.Certificate, forge.pki.rsa.PrivateKey] {
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = serial();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 5 * 60 * 1000); // clock skew
  cert.validity.notAfter = new Date(now + validityDays * DAY_MS);
  return [cert, key];
}

/**
 * Signs a certificate with SHA-256/RSA through `node:crypto` (native, about
 * 1 ms) instead of forge's JavaScript RSA (about 20 ms): forge builds the
 * to-be-signed structure, the runtime signs it.
 */
function signNative(cert: forge.pki.Certificate, keyPem: string): void {
  const oid = forge.pki.oids.sha256WithRSAEncryption;
  cert.signatureOid = oid;
  cert.siginfo.algorithmOid = oid;
  // deno-lint-ignore no-explicit-any
  const tbs = (forge.pki as any).getTBSCertificate(cert);
  // deno-lint-ignore no-explicit-any
  (cert as any).tbsCertificate = tbs;
  const der = forge.asn1.toDer(tbs).getBytes();
  const signature = sign("sha256", Buffer.from(der, "binary"), keyPem);
  cert.signature = signature.toString("binary");
}

function createCa(keyPem: string): KeyPair {
  const [cert] = baseCertificate(keyPem, CA_VALIDITY_DAYS);
  const subject = [
    { name: "commonName", value: `mca-ca-${serial().slice(0, 8)}` },
    { name: "organizationName", value: "MCA sidecar" },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    {
      name: "basicConstraints",
      cA: true,
      pathLenConstraint: 0,
      critical: true,
    },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  signNative(cert, keyPem);
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

function issueLeaf(ca: KeyPair, keyPem: string, names: ServerNames): KeyPair {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const [cert] = baseCertificate(keyPem, LEAF_VALIDITY_DAYS);
  cert.setSubject([{ name: "commonName", value: "mca" }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    {
      name: "keyUsage",
      digitalSignature: true,
      keyEncipherment: true,
      critical: true,
    },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: [
        ...names.dns.map((value) => ({ type: 2, value })),
        ...names.ips.map((ip) => ({ type: 7, ip })),
      ],
    },
    {
      name: "authorityKeyIdentifier",
      keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes(),
    },
  ]);
  signNative(cert, ca.keyPem);
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/** True when a PEM pair is a usable CA: parses, matches, not near expiry. */
function isUsableCa(pair: KeyPair): boolean {
  try {
    const cert = new X509Certificate(pair.certPem);
    const key = forge.pki.privateKeyFromPem(
      pair.keyPem,
    ) as forge.pki.rsa.PrivateKey;
    const pub = forge.pki.certificateFromPem(pair.certPem)
      .publicKey as forge.pki.rsa.PublicKey;
    const notAfter = Date.parse(cert.validTo);
    return cert.ca && pub.n.equals(key.n) &&
      notAfter - Date.now() > LEAF_VALIDITY_DAYS * DAY_MS;
  } catch {
    return false;
  }
}

function readUsableKey(path: string): string | undefined {
  try {
    const pem = Deno.readTextFileSync(path);
    forge.pki.privateKeyFromPem(pem);
    return pem;
  } catch {
    return undefined;
  }
}

/** What {@link prepareCertificates} produced, and whether the CA is new. */
export interface Certificates {
  ca: KeyPair;
  server: KeyPair;
  caReused: boolean;
}

/**
 * Loads the CA from `stateDir` (or creates and stores it there) and issues a
 * fresh serving certificate signed by it.
 *
 * A stored CA that does not parse, whose key does not match, or that is near
 * expiry is replaced (apps then need a restart to trust the new one, which
 * only happens after years or tampering).
 */
export async function prepareCertificates(
  stateDir: string,
  names: ServerNames = DEFAULT_SERVER_NAMES,
): Promise<Certificates> {
  const certPath = join(stateDir, CA_CERT_FILE);
  const keyPath = join(stateDir, CA_KEY_FILE);
  let stored: KeyPair | undefined;
  try {
    stored = {
      certPem: await Deno.readTextFile(certPath),
      keyPem: await Deno.readTextFile(keyPath),
    };
  } catch {
    stored = undefined;
  }
  const reuse = stored !== undefined && isUsableCa(stored);
  if (!reuse) await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
  // The serving key is kept too: a restart then only signs a new
  // certificate (milliseconds) instead of generating a key.
  const leafKeyPath = join(stateDir, LEAF_KEY_FILE);
  const storedLeafKey = reuse ? readUsableKey(leafKeyPath) : undefined;
  const [caKeyPem, leafKeyPem] = await Promise.all([
    reuse ? Promise.resolve("") : rsaKeyPem(),
    storedLeafKey !== undefined ? Promise.resolve(storedLeafKey) : rsaKeyPem(),
  ]);
  const ca = reuse ? stored! : createCa(caKeyPem);
  if (!reuse) {
    await writeFileAtomic(keyPath, ca.keyPem, { mode: 0o600 });
    await writeFileAtomic(certPath, ca.certPem, { mode: 0o600 });
  }
  if (storedLeafKey === undefined) {
    await writeFileAtomic(leafKeyPath, leafKeyPem, { mode: 0o600 });
  }
  return { ca, server: issueLeaf(ca, leafKeyPem, names), caReused: reuse };
}
