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
 * Keys are ECDSA P-256 (generated in well under a millisecond, where an RSA
 * key took 50-150 ms of the first start); the certificates are written by
 * `x509.ts`. A stored CA with an RSA key (an older MCA's) is still used.
 *
 * @module
 */

import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type KeyObject,
  X509Certificate,
} from "node:crypto";
import { join } from "node:path";
import { writeFileAtomic } from "./files.ts";
import { certificatePem, issueCertificate } from "./x509.ts";

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

/** A new ECDSA P-256 private key, PKCS#8 PEM. */
function ecKeyPem(): Promise<string> {
  const { promise, resolve, reject } = Promise.withResolvers<string>();
  generateKeyPair("ec", {
    namedCurve: "P-256",
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  }, (error, _publicKey, privateKey) => {
    if (error) reject(error);
    else resolve(privateKey);
  });
  return promise;
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return {
    notBefore: new Date(now - 5 * 60 * 1000), // clock skew
    notAfter: new Date(now + days * DAY_MS),
  };
}

function createCa(keyPem: string): KeyPair {
  const key = createPrivateKey(keyPem);
  const suffix = crypto.randomUUID().slice(0, 8);
  const der = issueCertificate({
    subject: [["CN", `mca-ca-${suffix}`], ["O", "MCA sidecar"]],
    ...validity(CA_VALIDITY_DAYS),
    ca: true,
  }, { publicKey: createPublicKey(key), signingKey: key });
  return { certPem: certificatePem(der), keyPem };
}

function issueLeaf(ca: KeyPair, keyPem: string, names: ServerNames): KeyPair {
  const caCert = new X509Certificate(ca.certPem);
  const der = issueCertificate({
    subject: [["CN", "mca"]],
    issuer: caSubject(caCert),
    ...validity(LEAF_VALIDITY_DAYS),
    ca: false,
    dns: names.dns,
    ips: names.ips,
    issuerKey: caCert.publicKey,
  }, {
    publicKey: createPublicKey(keyPem),
    signingKey: createPrivateKey(ca.keyPem),
  });
  return { certPem: certificatePem(der), keyPem };
}

/**
 * The CA's subject as attributes, for the leaf's issuer: MCA's CAs carry a
 * CN and an O only (`X509Certificate.subject` is "CN=...\nO=...").
 */
function caSubject(cert: X509Certificate): Array<["CN" | "O", string]> {
  const out: Array<["CN" | "O", string]> = [];
  for (const line of cert.subject.split("\n")) {
    const eq = line.indexOf("=");
    const type = line.slice(0, eq);
    if (type === "CN" || type === "O") out.push([type, line.slice(eq + 1)]);
  }
  return out;
}

/** True when a PEM pair is a usable CA: parses, matches, not near expiry. */
function isUsableCa(pair: KeyPair): boolean {
  try {
    const cert = new X509Certificate(pair.certPem);
    const notAfter = Date.parse(cert.validTo);
    return cert.ca && sameKey(cert.publicKey, createPrivateKey(pair.keyPem)) &&
      notAfter - Date.now() > LEAF_VALIDITY_DAYS * DAY_MS;
  } catch {
    return false;
  }
}

function sameKey(publicKey: KeyObject, privateKey: KeyObject): boolean {
  const spki = (k: KeyObject) =>
    Buffer.from(k.export({ type: "spki", format: "der" }));
  return spki(publicKey).equals(spki(createPublicKey(privateKey)));
}

function readUsableKey(path: string): string | undefined {
  try {
    const pem = Deno.readTextFileSync(path);
    createPrivateKey(pem);
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
    reuse ? Promise.resolve("") : ecKeyPem(),
    storedLeafKey !== undefined ? Promise.resolve(storedLeafKey) : ecKeyPem(),
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
