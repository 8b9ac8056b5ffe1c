/**
 * Throw-away X.509 material for tests: a CA and leaf certificates signed by
 * it, generated with node-forge (RSA-2048; forge uses the native key
 * generator under Deno, about 0.5 s per key).
 *
 * Leaf certificates are real end-entity certificates (CA:FALSE, with SANs),
 * because some clients (rustls / kube-rs) refuse a CA certificate used as a
 * server certificate.
 *
 * @module
 */

// @ts-types="@types/node-forge"
import forge from "node-forge";

/** A certificate authority usable to issue test certificates. */
export interface TestCa {
  /** The CA certificate, PEM. Hand this to clients as the trusted root. */
  certPem: string;
  /** The CA private key, PEM (PKCS#1). */
  keyPem: string;
}

/** A leaf certificate and its key, plus the PEM of the CA that signed it. */
export interface IssuedCert {
  /** The leaf certificate, PEM. */
  certPem: string;
  /** The leaf private key, PEM (PKCS#1 "RSA PRIVATE KEY"). */
  keyPem: string;
  /** The issuing CA certificate, PEM. */
  caPem: string;
}

/** Options for {@linkcode makeTestCa}. */
export interface TestCaOptions {
  /** Subject common name; default "mca-test-ca". */
  commonName?: string;
  /** Validity in days from now (backdated one hour); default 30. */
  days?: number;
}

/** Options for {@linkcode issueServerCert} and {@linkcode issueClientCert}. */
export interface LeafOptions {
  /** IP subjectAltNames; default ["127.0.0.1"] for server certificates. */
  ips?: string[];
  /** DNS subjectAltNames; default ["localhost"] for server certificates. */
  dns?: string[];
  /** Subject common name; default the first DNS name, else "mca-test". */
  commonName?: string;
  /** Subject organisations (client certificates: Kubernetes groups). */
  organizations?: string[];
  /** Validity in days from now (backdated one hour); default 30. */
  days?: number;
}

/** Creates a fresh self-signed CA (CA:TRUE, keyCertSign, cRLSign). */
export function makeTestCa(options: TestCaOptions = {}): TestCa {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  setValidity(cert, options.days ?? 30);
  const subject = [{
    name: "commonName",
    value: options.commonName ?? "mca-test-ca",
  }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return {
    certPem: forge.pki.certificateToPem(cert),
    keyPem: forge.pki.privateKeyToPem(keys.privateKey),
  };
}

/**
 * Issues a TLS server certificate (CA:FALSE, serverAuth) signed by `ca`, with
 * the given IP and DNS subjectAltNames (default IP:127.0.0.1, DNS:localhost).
 */
export function issueServerCert(
  ca: TestCa,
  options: LeafOptions = {},
): IssuedCert {
  return issueLeaf(ca, {
    ...options,
    ips: options.ips ?? ["127.0.0.1"],
    dns: options.dns ?? ["localhost"],
  }, "serverAuth");
}

/**
 * Issues a TLS client certificate (CA:FALSE, clientAuth) signed by `ca`. The
 * common name and organisations map to a Kubernetes user and groups.
 */
export function issueClientCert(
  ca: TestCa,
  options: LeafOptions = {},
): IssuedCert {
  return issueLeaf(ca, options, "clientAuth");
}

let defaultMaterial: { ca: TestCa; server: IssuedCert } | undefined;

/**
 * A process-wide CA and a server certificate for IP:127.0.0.1 and
 * DNS:localhost, generated on first use and then reused (saves ~1 s of key
 * generation per test).
 */
export function defaultTestTls(): { ca: TestCa; server: IssuedCert } {
  if (defaultMaterial === undefined) {
    const ca = makeTestCa();
    defaultMaterial = { ca, server: issueServerCert(ca) };
  }
  return defaultMaterial;
}

function issueLeaf(
  ca: TestCa,
  options: LeafOptions,
  usage: "serverAuth" | "clientAuth",
): IssuedCert {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const ips = options.ips ?? [];
  const dns = options.dns ?? [];
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  setValidity(cert, options.days ?? 30);
  const subject: forge.pki.CertificateField[] = [{
    name: "commonName",
    value: options.commonName ?? dns[0] ?? "mca-test",
  }];
  for (const org of options.organizations ?? []) {
    subject.push({ name: "organizationName", value: org });
  }
  cert.setSubject(subject);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [
    ...dns.map((value) => ({ type: 2, value })),
    ...ips.map((ip) => ({ type: 7, ip })),
  ];
  const extensions: object[] = [
    { name: "basicConstraints", cA: false, critical: true },
    {
      name: "keyUsage",
      digitalSignature: true,
      keyEncipherment: true,
      critical: true,
    },
    { name: "extKeyUsage", [usage]: true },
    { name: "subjectKeyIdentifier" },
    {
      name: "authorityKeyIdentifier",
      keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes(),
    },
  ];
  if (altNames.length > 0) {
    extensions.push({ name: "subjectAltName", altNames });
  }
  cert.setExtensions(extensions);
  cert.sign(caKey, forge.md.sha256.create());
  return {
    certPem: forge.pki.certificateToPem(cert),
    keyPem: forge.pki.privateKeyToPem(keys.privateKey),
    caPem: ca.certPem,
  };
}

function setValidity(cert: forge.pki.Certificate, days: number): void {
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + days * 24 * 60 * 60 * 1000);
}

/** A random positive 16-byte serial number, hex. */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
