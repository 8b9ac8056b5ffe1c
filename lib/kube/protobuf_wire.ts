/**
 * The protobuf wire format, read without a schema: a message is a sequence
 * of fields (tag = number << 3 | wire type), each a varint, a fixed 32/64-bit
 * value or a length-delimited payload. MCA only ever changes a few
 * length-delimited fields of Kubernetes' metadata, so it reads a message as
 * byte ranges and writes it back as the untouched ranges plus the fields it
 * replaced: every byte it does not change is kept as the API server wrote
 * it (fields it has no schema for, their order, unknown fields).
 *
 * Pure: bytes in, bytes out.
 *
 * @module
 */

/** A message that does not follow the wire format (truncated, bad wire type). */
export class ProtobufError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtobufError";
  }
}

/** One field of a message, as byte ranges of the message it was read from. */
export interface WireField {
  number: number;
  /** 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
  wireType: number;
  /** Where the field (its tag) starts. */
  start: number;
  /** Where its value (a length-delimited field's payload) starts. */
  valueStart: number;
  /** Where the field ends. */
  end: number;
}

/** Reads a varint at `pos`: its value (exact up to 2^53) and where it ends. */
export function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new ProtobufError("truncated varint");
    const byte = buf[pos++];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, pos];
    scale *= 128;
  }
  throw new ProtobufError("varint longer than 10 bytes");
}

/** The varint encoding of a non-negative integer. */
export function writeVarint(value: number): Uint8Array {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Uint8Array.from(out);
}

/** The fields of a message, in order; throws {@link ProtobufError} when it is not one. */
export function readFields(buf: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [tag, afterTag] = readVarint(buf, pos);
    const number = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (number === 0) throw new ProtobufError("field number 0");
    let valueStart = afterTag;
    let end: number;
    if (wireType === 0) end = readVarint(buf, afterTag)[1];
    else if (wireType === 1) end = afterTag + 8;
    else if (wireType === 5) end = afterTag + 4;
    else if (wireType === 2) {
      const [length, afterLength] = readVarint(buf, afterTag);
      valueStart = afterLength;
      end = afterLength + length;
    } else {
      throw new ProtobufError(`unsupported wire type ${wireType}`);
    }
    if (end > buf.length) throw new ProtobufError("truncated field");
    fields.push({ number, wireType, start, valueStart, end });
    pos = end;
  }
  return fields;
}

/** The payload of a length-delimited field. */
export function payload(buf: Uint8Array, field: WireField): Uint8Array {
  return buf.subarray(field.valueStart, field.end);
}

/** The value of a varint field. */
export function varintValue(buf: Uint8Array, field: WireField): number {
  return readVarint(buf, field.valueStart)[0];
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** A length-delimited field read as UTF-8 text; throws on invalid UTF-8. */
export function text(buf: Uint8Array, field: WireField): string {
  try {
    return decoder.decode(payload(buf, field));
  } catch {
    throw new ProtobufError(`field ${field.number} is not valid UTF-8`);
  }
}

/** A length-delimited field: tag, length, payload (a string is written as UTF-8). */
export function lengthField(
  number: number,
  value: Uint8Array | string,
): Uint8Array {
  const bytes = typeof value === "string" ? encoder.encode(value) : value;
  return concat([
    writeVarint(number * 8 + 2),
    writeVarint(bytes.length),
    bytes,
  ]);
}

/** A varint field: tag and value. */
export function varintField(number: number, value: number): Uint8Array {
  return concat([writeVarint(number * 8), writeVarint(value)]);
}

/** The bytes of several arrays, one after the other. */
export function concat(parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * `buf` with the fields numbered in `replace` taken out and, where the first
 * of them stood (or at the end when there was none), the bytes `replace`
 * gives for that number; every other field is kept byte for byte, in order.
 */
export function replaceFields(
  buf: Uint8Array,
  replace: Map<number, Uint8Array>,
): Uint8Array {
  const parts: Uint8Array[] = [];
  const placed = new Set<number>();
  let kept = 0;
  for (const field of readFields(buf)) {
    const bytes = replace.get(field.number);
    if (bytes === undefined) continue;
    parts.push(buf.subarray(kept, field.start));
    if (!placed.has(field.number)) parts.push(bytes);
    placed.add(field.number);
    kept = field.end;
  }
  parts.push(buf.subarray(kept));
  for (const [number, bytes] of replace) {
    if (!placed.has(number)) parts.push(bytes);
  }
  return concat(parts);
}
