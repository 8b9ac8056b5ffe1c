/**
 * Kubernetes objects in protobuf (`application/vnd.kubernetes.protobuf`),
 * read and written without a schema for their kinds.
 *
 * The body is the magic `k8s\0` followed by a `runtime.Unknown` (typeMeta 1
 * {apiVersion 1, kind 2}, raw 2, contentEncoding 3, contentType 4). `raw` is
 * the object, whose field 1 is its `ObjectMeta` for every top-level kind
 * (name 1, namespace 3, resourceVersion 6, labels 11, annotations 12; maps
 * are repeated entries {key 1, value 2}), or, for a `…List`, its `ListMeta`
 * (resourceVersion 2, continue 3, remainingItemCount 4) with the items as
 * field 2 (each an object without envelope). `Status` keeps a `ListMeta`
 * in field 1 and its code in field 6. Field numbers: k8s.io/apimachinery
 * `pkg/apis/meta/v1/generated.proto` and `pkg/runtime/generated.proto`.
 *
 * {@link decodeObject} turns such a body into a *stub*: the JSON shape MCA's
 * rewrites already work on (`kind`, `metadata` with namespace,
 * resourceVersion, labels, annotations; `items` of a list), remembering
 * the bytes it came from. {@link encodeObject} writes a stub back: the
 * fields a rewrite changed are encoded again, every other byte is the
 * original's.
 *
 * Pure: bytes in, bytes out.
 *
 * @module
 */

import {
  concat,
  lengthField,
  payload,
  ProtobufError,
  readFields,
  replaceFields,
  text,
  varintField,
  varintValue,
  type WireField,
} from "./protobuf_wire.ts";

export { ProtobufError } from "./protobuf_wire.ts";

/** The media type of Kubernetes' protobuf bodies. */
export const PROTOBUF = "application/vnd.kubernetes.protobuf";

/** The four bytes every protobuf body starts with. */
export const MAGIC = Uint8Array.of(0x6b, 0x38, 0x73, 0x00);

type Json = Record<string, unknown>;
type StringMap = Record<string, string>;

/** Where a stub came from: its bytes and what it said before any rewrite. */
interface Source {
  /** The envelope's `Unknown` (top-level stubs only). */
  unknown?: Uint8Array;
  /** The object's own message. */
  raw: Uint8Array;
  /** The metadata as read (compared with the stub's when writing back). */
  read: Json;
}

const sources = new WeakMap<object, Source>();

/** True for a stub {@link decodeObject} made (a merged body built from protobuf answers). */
export function isStub(value: unknown): boolean {
  return value !== null && typeof value === "object" &&
    sources.get(value)?.unknown !== undefined;
}

/** True for a `Content-Type` (or one `Accept` entry) naming Kubernetes protobuf. */
export function isProtobuf(contentType: string | undefined): boolean {
  return (contentType ?? "").trim().toLowerCase().startsWith(PROTOBUF);
}

function first(fields: WireField[], number: number): WireField | undefined {
  return fields.find((f) => f.number === number);
}

function stringField(
  buf: Uint8Array,
  fields: WireField[],
  number: number,
): string | undefined {
  const field = first(fields, number);
  if (field === undefined) return undefined;
  if (field.wireType !== 2) {
    throw new ProtobufError(`field ${number} is not a string`);
  }
  return text(buf, field);
}

/** The entries of a `map<string, string>` field. */
function readMap(buf: Uint8Array, fields: WireField[], number: number) {
  const out: StringMap = {};
  let seen = false;
  for (const field of fields) {
    if (field.number !== number) continue;
    if (field.wireType !== 2) {
      throw new ProtobufError("map entry not a message");
    }
    const entry = payload(buf, field);
    const parts = readFields(entry);
    out[stringField(entry, parts, 1) ?? ""] = stringField(entry, parts, 2) ??
      "";
    seen = true;
  }
  return seen ? out : undefined;
}

function writeMap(number: number, map: unknown): Uint8Array {
  if (map === null || typeof map !== "object") return new Uint8Array(0);
  const entries = Object.entries(map as Json)
    .filter(([, v]) => typeof v === "string")
    .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  return concat(
    entries.map(([k, v]) =>
      lengthField(
        number,
        concat([lengthField(1, k), lengthField(2, v as string)]),
      )
    ),
  );
}

/** The fields of a metadata message MCA reads, by JSON name: [number, kind]. */
const OBJECT_META: Record<string, [number, "string" | "map"]> = {
  name: [1, "string"],
  namespace: [3, "string"],
  resourceVersion: [6, "string"],
  labels: [11, "map"],
  annotations: [12, "map"],
};
const LIST_META: Record<string, [number, "string" | "varint"]> = {
  resourceVersion: [2, "string"],
  continue: [3, "string"],
  remainingItemCount: [4, "varint"],
};

function readMeta(buf: Uint8Array, list: boolean): Json {
  const fields = readFields(buf);
  const out: Json = {};
  for (
    const [name, [number, kind]] of Object.entries(
      list ? LIST_META : OBJECT_META,
    )
  ) {
    let value: unknown;
    if (kind === "map") value = readMap(buf, fields, number);
    else if (kind === "string") value = stringField(buf, fields, number);
    else {
      const field = first(fields, number);
      value = field && field.wireType === 0
        ? varintValue(buf, field)
        : undefined;
    }
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** The metadata message with the fields the stub changed written again. */
function writeMeta(buf: Uint8Array, read: Json, now: Json, list: boolean) {
  const replace = new Map<number, Uint8Array>();
  for (
    const [name, [number, kind]] of Object.entries(
      list ? LIST_META : OBJECT_META,
    )
  ) {
    const value = now[name];
    if (same(read[name], value)) continue;
    if (kind === "map") replace.set(number, writeMap(number, value));
    else if (kind === "varint") {
      replace.set(
        number,
        typeof value === "number"
          ? varintField(number, value)
          : new Uint8Array(0),
      );
    } else {
      replace.set(
        number,
        typeof value === "string" && value !== ""
          ? lengthField(number, value)
          : new Uint8Array(0),
      );
    }
  }
  return replace.size === 0 ? buf : replaceFields(buf, replace);
}

/** Kinds whose field 1 is not an `ObjectMeta`: kept byte for byte, never rewritten. */
function opaque(kind: string): boolean {
  return kind === "Status" || kind.endsWith("Options");
}

/** A stub of one object message (`kind` "" for a list's item). */
function decodeMessage(raw: Uint8Array, kind: string): Json {
  const fields = readFields(raw);
  const meta = first(fields, 1);
  if (opaque(kind) || (meta !== undefined && meta.wireType !== 2)) {
    const stub: Json = kind === "Status" ? statusStub(raw, fields) : {};
    sources.set(stub, { raw, read: {} });
    return stub;
  }
  const list = kind.endsWith("List");
  const read = meta ? readMeta(payload(raw, meta), list) : {};
  const stub: Json = { metadata: structuredClone(read) };
  if (list) {
    stub.items = fields.filter((f) => f.number === 2).map((f) => {
      if (f.wireType !== 2) throw new ProtobufError("list item not a message");
      return decodeMessage(payload(raw, f), "");
    });
  }
  sources.set(stub, { raw, read });
  return stub;
}

/** What the rewrites look at in a `Status`: its kind and code (it is never changed). */
function statusStub(raw: Uint8Array, fields: WireField[]): Json {
  const code = first(fields, 6);
  return {
    kind: "Status",
    ...(code && code.wireType === 0 ? { code: varintValue(raw, code) } : {}),
    message: stringField(raw, fields, 3) ?? "",
  };
}

/** One object message written back from its stub. */
function encodeMessage(stub: Json): Uint8Array {
  const source = sources.get(stub);
  if (source === undefined) {
    throw new ProtobufError("mca: a protobuf object lost its source bytes");
  }
  if (!("metadata" in stub)) return source.raw;
  const list = Array.isArray(stub.items);
  const fields = readFields(source.raw);
  const meta = first(fields, 1);
  const metaBytes = meta ? payload(source.raw, meta) : new Uint8Array(0);
  const now = (stub.metadata ?? {}) as Json;
  const written = writeMeta(metaBytes, source.read, now, list);
  const replace = new Map<number, Uint8Array>();
  if (written !== metaBytes || meta === undefined && Object.keys(now).length) {
    replace.set(1, lengthField(1, written));
  }
  if (list) {
    const items = stub.items as Json[];
    replace.set(2, concat(items.map((i) => lengthField(2, encodeMessage(i)))));
  }
  return replace.size === 0 ? source.raw : replaceFields(source.raw, replace);
}

/**
 * The stub of a protobuf body (object, list, Status). Throws
 * {@link ProtobufError} when the body is not one MCA can rewrite safely
 * (no magic, not the wire format, a compressed `raw`).
 */
export function decodeObject(body: Uint8Array): Json {
  if (body.length < 4 || MAGIC.some((b, i) => body[i] !== b)) {
    throw new ProtobufError(
      "the body does not start with the k8s protobuf magic",
    );
  }
  const unknown = body.subarray(4);
  const fields = readFields(unknown);
  const typeMeta = first(fields, 1);
  const typeFields = typeMeta ? readFields(payload(unknown, typeMeta)) : [];
  const typeBytes = typeMeta ? payload(unknown, typeMeta) : new Uint8Array(0);
  const apiVersion = stringField(typeBytes, typeFields, 1) ?? "";
  const kind = stringField(typeBytes, typeFields, 2) ?? "";
  if ((stringField(unknown, fields, 3) ?? "") !== "") {
    throw new ProtobufError("the object is compressed (contentEncoding)");
  }
  const raw = first(fields, 2);
  if (raw !== undefined && raw.wireType !== 2) {
    throw new ProtobufError("raw is not bytes");
  }
  const stub = decodeMessage(
    raw ? payload(unknown, raw) : new Uint8Array(0),
    kind,
  );
  sources.get(stub)!.unknown = unknown;
  return Object.assign(stub, { apiVersion, kind });
}

/** A protobuf body written back from the stub {@link decodeObject} made. */
export function encodeObject(stub: Json): Uint8Array {
  const source = sources.get(stub);
  if (!source?.unknown) {
    throw new ProtobufError("mca: not a stub of a protobuf body");
  }
  const raw = encodeMessage(stub);
  const unknown = raw === source.raw
    ? source.unknown
    : replaceFields(source.unknown, new Map([[2, lengthField(2, raw)]]));
  return concat([MAGIC, unknown]);
}
