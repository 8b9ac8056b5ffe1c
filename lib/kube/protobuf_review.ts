/**
 * Reads the attributes of a `SelfSubjectAccessReview` sent as protobuf
 * (kubectl's `auth can-i` and client-go's typed clients send
 * `application/vnd.kubernetes.protobuf`): enough of the wire format to
 * route the review, without the generated schema. The envelope is the
 * magic `k8s\0` and a `runtime.Unknown` whose field 2 holds the object;
 * in the object, field 2 is the spec, whose field 1 is
 * `resourceAttributes` (namespace 1, verb 2, group 3, version 4, resource
 * 5, subresource 6, name 7) and field 2 `nonResourceAttributes` (path 1,
 * verb 2), as in k8s.io/api/authorization/v1/generated.proto.
 *
 * Pure; never throws (undefined for bytes that are not such a review).
 *
 * @module
 */

const MAGIC = [0x6b, 0x38, 0x73, 0x00];

/** The length-delimited fields of one message, by field number. */
function fields(bytes: Uint8Array): Map<number, Uint8Array> | undefined {
  const out = new Map<number, Uint8Array>();
  let at = 0;
  const varint = (): number | undefined => {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (at >= bytes.length) return undefined;
      const b = bytes[at++];
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
    return undefined;
  };
  while (at < bytes.length) {
    const tag = varint();
    if (tag === undefined) return undefined;
    const wire = tag & 7;
    if (wire === 0 && varint() === undefined) return undefined;
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const length = varint();
      if (length === undefined || at + length > bytes.length) return undefined;
      out.set(Math.floor(tag / 8), bytes.subarray(at, at + length));
      at += length;
    } else if (wire !== 0) return undefined;
  }
  return at === bytes.length ? out : undefined;
}

function strings(
  message: Uint8Array | undefined,
  names: string[],
): Record<string, string> | undefined {
  const f = message && fields(message);
  if (!f) return undefined;
  const text = new TextDecoder();
  return Object.fromEntries(
    names.flatMap((name, i) => {
      const value = f.get(i + 1);
      return value ? [[name, text.decode(value)]] : [];
    }),
  );
}

/** The review's spec as JSON (`{spec: {resourceAttributes}}`), or undefined. */
export function decodeProtobufReview(
  bytes: Uint8Array,
): { spec: Record<string, unknown> } | undefined {
  if (!MAGIC.every((b, i) => bytes[i] === b)) return undefined;
  const raw = fields(bytes.subarray(4))?.get(2);
  const spec = raw && fields(raw)?.get(2);
  const specFields = spec && fields(spec);
  if (!specFields) return undefined;
  const resource = strings(specFields.get(1), [
    "namespace",
    "verb",
    "group",
    "version",
    "resource",
    "subresource",
    "name",
  ]);
  if (resource && specFields.has(1)) {
    return { spec: { resourceAttributes: resource } };
  }
  const nonResource = strings(specFields.get(2), ["path", "verb"]);
  return nonResource && specFields.has(2)
    ? { spec: { nonResourceAttributes: nonResource } }
    : undefined;
}
