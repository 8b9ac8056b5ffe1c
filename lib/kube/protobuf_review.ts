/**
 * Reads the attributes of a `SelfSubjectAccessReview` sent as protobuf
 * (kubectl's `auth can-i` and client-go's typed clients send
 * `application/vnd.kubernetes.protobuf`): enough to route the review,
 * without the generated schema, on the wire reader every protobuf body uses
 * (`protobuf_wire.ts`). The envelope is the magic `k8s\0` and a
 * `runtime.Unknown` whose field 2 holds the object; in the object, field 2
 * is the spec, whose field 1 is `resourceAttributes` (namespace 1, verb 2,
 * group 3, version 4, resource 5, subresource 6, name 7) and field 2
 * `nonResourceAttributes` (path 1, verb 2), as in
 * k8s.io/api/authorization/v1/generated.proto.
 *
 * Pure; never throws (undefined for bytes that are not such a review).
 *
 * @module
 */

import { payload, ProtobufError, readFields, text } from "./protobuf_wire.ts";

const MAGIC = [0x6b, 0x38, 0x73, 0x00];

/** The last length-delimited field `number` of a message, if any. */
function child(message: Uint8Array, number: number): Uint8Array | undefined {
  const field = readFields(message).findLast((f) =>
    f.number === number && f.wireType === 2
  );
  return field && payload(message, field);
}

/** The message's string fields 1..n under the given names. */
function strings(message: Uint8Array, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const field of readFields(message)) {
    const name = names[field.number - 1];
    if (name !== undefined && field.wireType === 2) {
      out[name] = text(message, field);
    }
  }
  return out;
}

const RESOURCE = [
  "namespace",
  "verb",
  "group",
  "version",
  "resource",
  "subresource",
  "name",
];

/** The review's spec as JSON (`{spec: {resourceAttributes}}`), or undefined. */
export function decodeProtobufReview(
  bytes: Uint8Array,
): { spec: Record<string, unknown> } | undefined {
  if (!MAGIC.every((b, i) => bytes[i] === b)) return undefined;
  try {
    const raw = child(bytes.subarray(4), 2);
    const spec = raw && child(raw, 2);
    if (!spec) return undefined;
    const resource = child(spec, 1);
    if (resource) {
      return { spec: { resourceAttributes: strings(resource, RESOURCE) } };
    }
    const nonResource = child(spec, 2);
    return nonResource
      ? {
        spec: { nonResourceAttributes: strings(nonResource, ["path", "verb"]) },
      }
      : undefined;
  } catch (error) {
    if (error instanceof ProtobufError) return undefined;
    throw error;
  }
}
