/**
 * An independent protobuf encoder/decoder for the tests of MCA's
 * schema-free rewrite: protobufjs with the messages of Kubernetes that the
 * tests use, field numbers transcribed from k8s.io/apimachinery v0.34
 * (`pkg/apis/meta/v1/generated.proto`, `pkg/runtime/generated.proto`) and
 * k8s.io/api v0.34 (`core/v1/generated.proto`, ConfigMap). It knows the
 * schema; MCA's code does not, so a rewrite that breaks a byte it should
 * have kept shows up as a field the oracle decodes differently.
 *
 * @module
 */

import protobuf from "protobufjs";

const SCHEMA = `
syntax = "proto2";
package k8s;
message Time { optional int64 seconds = 1; optional int32 nanos = 2; }
message OwnerReference {
  optional string kind = 1; optional string name = 3; optional string uid = 4;
  optional string apiVersion = 5; optional bool controller = 6;
  optional bool blockOwnerDeletion = 7;
}
message ManagedFieldsEntry {
  optional string manager = 1; optional string operation = 2;
  optional string apiVersion = 3; optional Time time = 4;
  optional string fieldsType = 6; optional bytes fieldsV1 = 7;
  optional string subresource = 8;
}
message ObjectMeta {
  optional string name = 1; optional string generateName = 2;
  optional string namespace = 3; optional string selfLink = 4;
  optional string uid = 5; optional string resourceVersion = 6;
  optional int64 generation = 7; optional Time creationTimestamp = 8;
  optional Time deletionTimestamp = 9;
  optional int64 deletionGracePeriodSeconds = 10;
  map<string, string> labels = 11; map<string, string> annotations = 12;
  repeated OwnerReference ownerReferences = 13;
  repeated string finalizers = 14;
  repeated ManagedFieldsEntry managedFields = 17;
}
message ListMeta {
  optional string selfLink = 1; optional string resourceVersion = 2;
  optional string continue = 3; optional int64 remainingItemCount = 4;
}
message ConfigMap {
  optional ObjectMeta metadata = 1; map<string, string> data = 2;
  optional bool immutable = 3; map<string, bytes> binaryData = 4;
}
message ConfigMapList { optional ListMeta metadata = 1; repeated ConfigMap items = 2; }
message Status {
  optional ListMeta metadata = 1; optional string status = 2;
  optional string message = 3; optional string reason = 4;
  optional int32 code = 6;
}
message DeleteOptions {
  optional int64 gracePeriodSeconds = 1; optional string propagationPolicy = 4;
  repeated string dryRun = 5;
}
message TypeMeta { optional string apiVersion = 1; optional string kind = 2; }
message Unknown {
  optional TypeMeta typeMeta = 1; optional bytes raw = 2;
  optional string contentEncoding = 3; optional string contentType = 4;
}
message RawExtension { optional bytes raw = 1; }
message WatchEvent { optional string type = 1; optional RawExtension object = 2; }
message ResourceAttributes {
  optional string namespace = 1; optional string verb = 2;
  optional string group = 3; optional string version = 4;
  optional string resource = 5; optional string subresource = 6;
  optional string name = 7;
}
message NonResourceAttributes { optional string path = 1; optional string verb = 2; }
message SelfSubjectAccessReviewSpec {
  optional ResourceAttributes resourceAttributes = 1;
  optional NonResourceAttributes nonResourceAttributes = 2;
}
message SelfSubjectAccessReview {
  optional ObjectMeta metadata = 1; optional SelfSubjectAccessReviewSpec spec = 2;
}
`;

const root = protobuf.parse(SCHEMA, { keepCase: true }).root;

/** A message type of the oracle's schema (`ConfigMap`, `Unknown`, …). */
export function oracleType(name: string): protobuf.Type {
  return root.lookupType(`k8s.${name}`);
}

type Json = Record<string, unknown>;

/** Encodes `value` as message `type` (checked against the schema). */
export function oracleEncode(type: string, value: Json): Uint8Array {
  const t = oracleType(type);
  const error = t.verify(value);
  if (error) throw new Error(`oracle: ${type}: ${error}`);
  return t.encode(t.fromObject(value)).finish();
}

/** Decodes message `type` into plain JSON (64-bit integers as numbers, bytes as base64). */
export function oracleDecode(type: string, bytes: Uint8Array): Json {
  const t = oracleType(type);
  return t.toObject(t.decode(bytes), {
    longs: Number,
    bytes: String,
    defaults: false,
    arrays: false,
    objects: false,
  }) as Json;
}

const MAGIC = Uint8Array.of(0x6b, 0x38, 0x73, 0x00);

/** A whole protobuf body as kube-apiserver sends it: magic, `Unknown` around `raw`. */
export function oracleBody(
  kind: string,
  value: Json,
  apiVersion = "v1",
): Uint8Array {
  const raw = oracleEncode(kind, value);
  const unknown = oracleEncode("Unknown", {
    typeMeta: { apiVersion, kind },
    raw,
    contentEncoding: "",
    contentType: "",
  });
  const out = new Uint8Array(4 + unknown.length);
  out.set(MAGIC);
  out.set(unknown, 4);
  return out;
}

/** The kind and the object of a whole protobuf body, decoded by the oracle. */
export function oracleReadBody(
  body: Uint8Array,
): { kind: string; object: Json } {
  if (!MAGIC.every((b, i) => body[i] === b)) {
    throw new Error("oracle: no magic");
  }
  const unknown = oracleType("Unknown").decode(body.subarray(4)) as unknown as {
    typeMeta?: { kind?: string };
    raw?: Uint8Array;
  };
  const kind = unknown.typeMeta?.kind ?? "";
  return { kind, object: oracleDecode(kind, unknown.raw ?? new Uint8Array(0)) };
}
