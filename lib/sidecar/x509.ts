/**
 * The two certificates MCA issues (its CA and the proxy's serving leaf),
 * written as DER by hand and signed by `node:crypto`.
 *
 * Why not a library: node-forge did this before, and importing it cost
 * every Pod 7.1 MiB of RSS and about 27 ms of start-up
 * (`bench/repro/import_cost.ts`) for two certificates of one fixed shape.
 * Only encoding is written here: keys, key encodings and signatures are
 * `node:crypto`'s, and the tests parse the output with `node:crypto`'s
 * X509Certificate and with the openssl CLI as independent readers (ADR
 * 0010).
 *
 * @module
 */

import { createHash, type KeyObject, randomBytes, sign } from "node:crypto";
import { isIP } from "node:net";

/** The fields of one certificate MCA issues. */
export interface CertificateSpec {
  subject: Array<[attribute: "CN" | "O", value: string]>;
  /** The issuer's subject; the certificate's own for a self-signed one. */
  issuer?: Array<[attribute: "CN" | "O", value: string]>;
  notBefore: Date;
  notAfter: Date;
  /** A CA (may sign certificates) or a TLS server leaf. */
  ca: boolean;
  /** Subject alternative names of a leaf. */
  dns?: string[];
  ips?: string[];
  /** The issuer's public key, for the authority key identifier. */
  issuerKey?: KeyObject;
}

const OID = {
  CN: "2.5.4.3",
  O: "2.5.4.10",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  sha256WithRsa: "1.2.840.113549.1.1.11",
};

/**
 * A DER certificate for `publicKey`, signed with `signingKey` (the
 * issuer's private key; ECDSA P-256 or RSA, SHA-256 either way).
 */
export function issueCertificate(
  spec: CertificateSpec,
  keys: { publicKey: KeyObject; signingKey: KeyObject },
): Uint8Array {
  const algorithm = signatureAlgorithm(keys.signingKey);
  const tbs = seq(
    explicit(0, integer(Uint8Array.of(2))), // v3
    integer(serialNumber()),
    algorithm,
    name(spec.issuer ?? spec.subject),
    seq(time(spec.notBefore), time(spec.notAfter)),
    name(spec.subject),
    spki(keys.publicKey),
    explicit(3, seq(...extensions(spec, keys.publicKey))),
  );
  const signature = sign("sha256", tbs, keys.signingKey);
  return seq(tbs, algorithm, bitString(signature));
}

/** PEM armour for a DER certificate. */
export function certificatePem(der: Uint8Array): string {
  const b64 = btoa(String.fromCharCode(...der));
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${
    lines.join("\n")
  }\n-----END CERTIFICATE-----\n`;
}

/** The AlgorithmIdentifier of a SHA-256 signature by `key`. */
function signatureAlgorithm(key: KeyObject): Uint8Array {
  if (key.asymmetricKeyType === "ec") return seq(oid(OID.ecdsaWithSha256));
  if (key.asymmetricKeyType === "rsa") {
    return seq(oid(OID.sha256WithRsa), der(0x05, new Uint8Array()));
  }
  throw new Error(
    `cannot sign certificates with a ${key.asymmetricKeyType} key; use ECDSA P-256 or RSA`,
  );
}

function extensions(spec: CertificateSpec, publicKey: KeyObject) {
  const out = [
    extension(
      OID.basicConstraints,
      true,
      spec.ca ? seq(bool(true), integer(Uint8Array.of(0))) : seq(),
    ),
    extension(OID.keyUsage, true, keyUsage(spec.ca, publicKey)),
    extension(OID.subjectKeyIdentifier, false, octets(keyId(publicKey))),
  ];
  if (!spec.ca) {
    out.push(extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))));
    out.push(extension(OID.subjectAltName, false, altNames(spec)));
  }
  if (spec.issuerKey) {
    out.push(
      extension(
        OID.authorityKeyIdentifier,
        false,
        seq(der(0x80, keyId(spec.issuerKey))),
      ),
    );
  }
  return out;
}

/**
 * keyCertSign + cRLSign (bits 5, 6) for a CA; digitalSignature (bit 0) for
 * a leaf, plus keyEncipherment (bit 2) for an RSA one, as Go's crypto/x509
 * users (kubeadm) set them. DER drops the trailing zero bits.
 */
function keyUsage(ca: boolean, key: KeyObject): Uint8Array {
  if (ca) return bitString(Uint8Array.of(0x06), 1);
  return key.asymmetricKeyType === "rsa"
    ? bitString(Uint8Array.of(0xa0), 5)
    : bitString(Uint8Array.of(0x80), 7);
}

function altNames(spec: CertificateSpec): Uint8Array {
  const names = (spec.dns ?? []).map((d) => der(0x82, ascii(d)));
  for (const ip of spec.ips ?? []) names.push(der(0x87, ipBytes(ip)));
  return seq(...names);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function keyId(key: KeyObject): Uint8Array {
  const info = key.export({ type: "spki", format: "der" });
  return createHash("sha1").update(subjectPublicKeyBits(info)).digest();
}

/** The BIT STRING's content (without its unused-bits byte) of an SPKI. */
function subjectPublicKeyBits(info: Uint8Array): Uint8Array {
  let at = headerLength(info, 0); // into the outer SEQUENCE
  at += headerLength(info, at) + contentLength(info, at); // skip algorithm
  return info.subarray(at + headerLength(info, at) + 1);
}

function headerLength(bytes: Uint8Array, at: number): number {
  const first = bytes[at + 1];
  return first < 0x80 ? 2 : 2 + (first & 0x7f);
}

function contentLength(bytes: Uint8Array, at: number): number {
  const first = bytes[at + 1];
  if (first < 0x80) return first;
  let n = 0;
  for (let i = 0; i < (first & 0x7f); i++) n = n * 256 + bytes[at + 2 + i];
  return n;
}

function spki(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ type: "spki", format: "der" }));
}

function serialNumber(): Uint8Array {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f; // positive, as X.509 requires
  bytes[0] |= 0x01; // and of the full 16 bytes
  return bytes;
}

function name(attributes: Array<["CN" | "O", string]>): Uint8Array {
  return seq(
    ...attributes.map(([type, value]) =>
      der(0x31, seq(oid(OID[type]), der(0x0c, utf8(value))))
    ),
  );
}

function extension(
  id: string,
  critical: boolean,
  value: Uint8Array,
): Uint8Array {
  return critical
    ? seq(oid(id), bool(true), octets(value))
    : seq(oid(id), octets(value));
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(date: Date): Uint8Array {
  const iso = date.toISOString(); // 2026-01-02T03:04:05.678Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z";
  return date.getUTCFullYear() < 2050
    ? der(0x17, ascii(digits.slice(2)))
    : der(0x18, ascii(digits));
}

function ipBytes(ip: string): Uint8Array {
  const family = isIP(ip);
  if (family === 4) return Uint8Array.from(ip.split(".").map(Number));
  if (family !== 6) throw new Error(`${ip} is not an IP address`);
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const groups = (part: string | undefined) =>
    part ? part.split(":").map((g) => parseInt(g, 16)) : [];
  const front = groups(head);
  const back = groups(tail);
  const all = tail === undefined
    ? front
    : [...front, ...Array(8 - front.length - back.length).fill(0), ...back];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

// DER primitives (X.690)

function der(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const length = n < 0x80
    ? [n]
    : n < 0x100
    ? [0x81, n]
    : n < 0x10000
    ? [0x82, n >> 8, n & 0xff]
    : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(1 + length.length + n);
  out[0] = tag;
  out.set(length, 1);
  out.set(content, 1 + length.length);
  return out;
}

function seq(...parts: Uint8Array[]): Uint8Array {
  return der(0x30, concat(parts));
}

function explicit(n: number, content: Uint8Array): Uint8Array {
  return der(0xa0 + n, content);
}

function integer(bytes: Uint8Array): Uint8Array {
  return der(0x02, bytes[0] & 0x80 ? concat([Uint8Array.of(0), bytes]) : bytes);
}

function bool(value: boolean): Uint8Array {
  return der(0x01, Uint8Array.of(value ? 0xff : 0));
}

function octets(bytes: Uint8Array): Uint8Array {
  return der(0x04, bytes);
}

function bitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  return der(0x03, concat([Uint8Array.of(unusedBits), bytes]));
}

function oid(dotted: string): Uint8Array {
  const [a, b, ...rest] = dotted.split(".").map(Number);
  const out = [40 * a + b];
  for (const n of rest) {
    const base128 = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) base128.unshift((v & 0x7f) | 0x80);
    out.push(...base128);
  }
  return der(0x06, Uint8Array.from(out));
}

function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0x7f);
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
