/**
 * Watch streams in protobuf (`application/vnd.kubernetes.protobuf;stream=watch`).
 * kube-apiserver frames each event with a 4-byte big-endian length
 * (apimachinery's `LengthDelimitedFramer`); a frame is a `metav1.WatchEvent`
 * without envelope (type 1, object 2 = `runtime.RawExtension` {raw 1}), and
 * `raw` is the object as a whole protobuf body, envelope included.
 *
 * {@link decodeWatchEvent} makes the JSON-shaped stub MCA's watch rewrites
 * work on (`{type, object}`, the object a stub of
 * lib/kube/protobuf_object.ts); {@link encodeWatchEvent} writes it back,
 * every byte not rewritten kept.
 *
 * Pure: bytes in, bytes out.
 *
 * @module
 */

import {
  decodeObject,
  encodeObject,
  MAGIC,
  ProtobufError,
} from "./protobuf_object.ts";
import {
  concat,
  lengthField,
  payload,
  readFields,
  replaceFields,
  text,
  varintField,
} from "./protobuf_wire.ts";

type Json = Record<string, unknown>;

/** The largest frame accepted (kube-apiserver's objects are bounded well below). */
const MAX_FRAME = 64 * 1024 * 1024;

/** A watch event's stub and the bytes it was read from. */
const frames = new WeakMap<object, Uint8Array>();

/** The stub of one frame's `WatchEvent`; throws {@link ProtobufError} when it is not one. */
export function decodeWatchEvent(frame: Uint8Array): Json {
  const fields = readFields(frame);
  const type = fields.find((f) => f.number === 1);
  const object = fields.find((f) => f.number === 2);
  if (type?.wireType !== 2 || object?.wireType !== 2) {
    throw new ProtobufError("a watch event without type or object");
  }
  const extension = payload(frame, object);
  const raw = readFields(extension).find((f) => f.number === 1);
  if (raw?.wireType !== 2) {
    throw new ProtobufError("a watch event's object has no raw");
  }
  const event: Json = {
    type: text(frame, type),
    object: decodeObject(payload(extension, raw)),
  };
  frames.set(event, frame);
  return event;
}

/** One frame's `WatchEvent` (no length prefix) written back from its stub. */
export function encodeWatchEvent(event: Json): Uint8Array {
  const frame = frames.get(event);
  if (frame === undefined) {
    throw new ProtobufError("mca: not a stub of a watch event");
  }
  const fields = readFields(frame);
  const object = fields.find((f) => f.number === 2)!;
  const extension = payload(frame, object);
  const raw = lengthField(1, encodeObject(event.object as Json));
  const written = replaceFields(extension, new Map([[1, raw]]));
  return replaceFields(frame, new Map([[2, lengthField(2, written)]]));
}

/** A frame with its 4-byte big-endian length in front. */
export function lengthPrefixed(frame: Uint8Array): Uint8Array {
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint32(0, frame.length);
  return concat([head, frame]);
}

/**
 * Cuts a byte stream into frames: {@link push} each chunk as it comes and
 * take the whole frames it completes.
 */
export class FrameReader {
  #buffer: Uint8Array = new Uint8Array(0);

  /** The frames this chunk completes; throws on a frame over 64 MiB. */
  push(chunk: Uint8Array): Uint8Array[] {
    this.#buffer = concat([this.#buffer, chunk]);
    const out: Uint8Array[] = [];
    let at = 0;
    while (this.#buffer.length - at >= 4) {
      const view = new DataView(
        this.#buffer.buffer,
        this.#buffer.byteOffset + at,
        4,
      );
      const length = view.getUint32(0);
      if (length > MAX_FRAME) {
        throw new ProtobufError(`a watch frame of ${length} bytes`);
      }
      if (this.#buffer.length - at - 4 < length) break;
      out.push(this.#buffer.slice(at + 4, at + 4 + length));
      at += 4 + length;
    }
    this.#buffer = this.#buffer.slice(at);
    return out;
  }

  /** Bytes of a frame not yet complete (a stream that ends with some was cut). */
  get pending(): number {
    return this.#buffer.length;
  }
}

/**
 * A watch event MCA makes itself (an `ERROR` with its own `Status`, e.g.
 * `410 Expired`), written as kube-apiserver writes one: a `WatchEvent` whose
 * object is a whole protobuf body of kind `Status` (metadata 1, status 2,
 * message 3, reason 4, code 6).
 */
export function encodeStatusEvent(event: Json): Uint8Array {
  const status = (event.object ?? {}) as Json;
  const str = (value: unknown) => typeof value === "string" ? value : "";
  const message = concat([
    lengthField(1, new Uint8Array(0)),
    lengthField(2, str(status.status)),
    lengthField(3, str(status.message)),
    lengthField(4, str(status.reason)),
    varintField(6, Number(status.code ?? 0)),
  ]);
  const unknown = concat([
    lengthField(1, concat([lengthField(1, "v1"), lengthField(2, "Status")])),
    lengthField(2, message),
  ]);
  const body = concat([MAGIC, unknown]);
  return concat([
    lengthField(1, str(event.type)),
    lengthField(2, lengthField(1, body)),
  ]);
}
