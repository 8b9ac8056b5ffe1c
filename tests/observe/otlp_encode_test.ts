/**
 * The protobuf ExportTraceServiceRequest, read back with a generic wire
 * reader written here from the protobuf encoding spec (tags, varints,
 * fixed64, length-delimited). The real receiver's decoding of the same
 * bytes is proven in tests/e2e/tracing_e2e_test.ts.
 */
import assert from "node:assert/strict";
import {
  encodeProtobuf,
  type FinishedSpan,
} from "../../lib/observe/otlp_encode.ts";

type Field = { wire: number; value: bigint | Uint8Array };

/** Every field of one message, by number, in order. */
function fields(buf: Uint8Array): Map<number, Field[]> {
  const out = new Map<number, Field[]>();
  let at = 0;
  const varint = () => {
    let v = 0n, shift = 0n;
    while (true) {
      const b = buf[at++];
      assert.ok(b !== undefined, "truncated varint");
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
      shift += 7n;
    }
  };
  while (at < buf.length) {
    const tag = Number(varint());
    const wire = tag & 7, num = tag >> 3;
    let value: bigint | Uint8Array;
    if (wire === 0) value = varint();
    else if (wire === 1) {
      value = new DataView(buf.buffer, buf.byteOffset + at, 8)
        .getBigUint64(0, true);
      at += 8;
    } else if (wire === 2) {
      const len = Number(varint());
      value = buf.subarray(at, at + len);
      assert.ok(at + len <= buf.length, "length past the end");
      at += len;
    } else throw new Error(`unexpected wire type ${wire}`);
    out.set(num, [...(out.get(num) ?? []), { wire, value }]);
  }
  return out;
}

function one(m: Map<number, Field[]>, n: number): Field {
  const f = m.get(n);
  assert.equal(f?.length, 1, `field ${n} once`);
  return f![0];
}
const bytesOf = (f: Field) => f.value as Uint8Array;
const text = (f: Field) => new TextDecoder().decode(bytesOf(f));
const hex = (f: Field) =>
  [...bytesOf(f)].map((b) => b.toString(16).padStart(2, "0")).join("");

/** KeyValue list → { key: [wire-level field number, decoded value] }. */
function attrs(list: Field[] = []): Record<string, [number, unknown]> {
  const out: Record<string, [number, unknown]> = {};
  for (const kv of list) {
    const m = fields(bytesOf(kv));
    const any = fields(bytesOf(one(m, 2)));
    const [[num, [f]]] = [...any];
    let v: unknown = f.value;
    if (num === 1) v = text(f);
    if (num === 3) v = BigInt.asIntN(64, f.value as bigint);
    if (num === 4) {
      const b = new ArrayBuffer(8);
      new DataView(b).setBigUint64(0, f.value as bigint, true);
      v = new DataView(b).getFloat64(0, true);
    }
    out[text(one(m, 1))] = [num, v];
  }
  return out;
}

const SPAN: FinishedSpan = {
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  spanId: "00f067aa0ba902b7",
  parentSpanId: "a3ce929d0e0e4736",
  name: "GET pods · ü ✓",
  kind: 2,
  startNs: 1_764_000_000_123_456_789n,
  endNs: 1_764_000_000_223_456_789n,
  attributes: {
    "k8s.verb": "list",
    "http.response.status_code": 503,
    "neg": -2,
    "ratio": 0.25,
    "ok": true,
  },
  statusCode: 2,
  statusMessage: "upstream unreachable",
};

Deno.test("otlp protobuf: resource, scope and span fields at their OTLP numbers", () => {
  const body = encodeProtobuf({ "service.name": "mca" }, [
    SPAN,
    { ...SPAN, spanId: "1111111111111111", parentSpanId: undefined },
  ]);
  const rs = fields(bytesOf(one(fields(body), 1)));
  const resource = fields(bytesOf(one(rs, 1)));
  assert.deepEqual(attrs(resource.get(1)), { "service.name": [1, "mca"] });
  const ss = fields(bytesOf(one(rs, 2)));
  assert.equal(text(one(fields(bytesOf(one(ss, 1))), 1)), "mca");
  const spans = ss.get(2)!.map((f) => fields(bytesOf(f)));
  assert.equal(spans.length, 2);
  const s = spans[0];
  assert.equal(hex(one(s, 1)), SPAN.traceId);
  assert.equal(bytesOf(one(s, 1)).length, 16);
  assert.equal(hex(one(s, 2)), SPAN.spanId);
  assert.equal(hex(one(s, 4)), SPAN.parentSpanId);
  assert.equal(text(one(s, 5)), "GET pods · ü ✓");
  assert.deepEqual(one(s, 6), { wire: 0, value: 2n });
  assert.deepEqual(one(s, 7), { wire: 1, value: SPAN.startNs });
  assert.deepEqual(one(s, 8), { wire: 1, value: SPAN.endNs });
  assert.deepEqual(attrs(s.get(9)), {
    "k8s.verb": [1, "list"],
    "http.response.status_code": [3, 503n],
    "neg": [3, -2n],
    "ratio": [4, 0.25],
    "ok": [2, 1n],
  });
  const status = fields(bytesOf(one(s, 15)));
  assert.equal(text(one(status, 2)), "upstream unreachable");
  assert.deepEqual(one(status, 3), { wire: 0, value: 2n });
  assert.equal(spans[1].has(4), false, "a root span has no parent field");
});

Deno.test("otlp protobuf: a span without a status writes no status field; large batches grow the buffer", () => {
  const many = Array.from({ length: 600 }, (_, i) => ({
    ...SPAN,
    statusCode: undefined,
    statusMessage: undefined,
    name: `span ${i} ${"x".repeat(200)}`,
  }));
  const body = encodeProtobuf({}, many);
  const ss = fields(bytesOf(one(fields(bytesOf(one(fields(body), 1))), 2)));
  const spans = ss.get(2)!.map((f) => fields(bytesOf(f)));
  assert.equal(spans.length, 600);
  assert.equal(text(one(spans[599], 5)), `span 599 ${"x".repeat(200)}`);
  assert.ok(spans.every((s) => !s.has(15)));
});
