/**
 * Fuzzer of the schema-free protobuf rewrite (lib/kube/protobuf_object.ts,
 * protobuf_watch.ts) against an independent oracle: protobufjs with the
 * Kubernetes schema (tests/support/k8s_protobuf_oracle.ts). Random
 * ConfigMaps, lists and watch events are encoded by the oracle, rewritten
 * by MCA's own JSON rewrites working on the stub, and decoded by the
 * oracle again; the result must equal the same rewrites applied to the
 * oracle's JSON. Fixed seed (tests/support/property.ts).
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { propertyRuns } from "../support/property.ts";
import {
  oracleBody,
  oracleDecode,
  oracleEncode,
  oracleReadBody,
} from "../support/k8s_protobuf_oracle.ts";
import {
  decodeObject,
  encodeObject,
  ProtobufError,
} from "../../lib/kube/protobuf_object.ts";
import {
  decodeWatchEvent,
  encodeStatusEvent,
  encodeWatchEvent,
  FrameReader,
  lengthPrefixed,
} from "../../lib/kube/protobuf_watch.ts";
import {
  decorateObjects,
  objectLabels,
  rewriteBodyNamespace,
  undecorateObject,
} from "../../lib/multicluster/rewrite.ts";
import { mergeListAnswers } from "../../lib/multicluster/list_merge.ts";
import { goneEvent } from "../../lib/multicluster/watch_merge.ts";
import { encodeResourceVersion } from "../../lib/kube/resource_version.ts";

type Json = Record<string, unknown>;

const word = fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,10}[a-z0-9])?$/);
const text = fc.string({ maxLength: 12, unit: "grapheme" });
const stringMap = fc.dictionary(
  fc.oneof(word, fc.constant("mca.io/cluster")),
  text,
  { maxKeys: 4 },
);
const time = fc.record({
  seconds: fc.integer({ min: 0, max: 2 ** 40 }),
  nanos: fc.integer({ min: 0, max: 999_999_999 }),
}, { requiredKeys: [] });

/** ObjectMeta as gogo writes it: empty strings present or not, every field kind. */
const objectMeta = fc.record({
  name: word,
  generateName: fc.constantFrom("", "gen-"),
  namespace: fc.constantFrom("", "app-ns", "remote-ns", "other"),
  uid: fc.uuid(),
  resourceVersion: fc.oneof(
    fc.constantFrom("", "1"),
    fc.integer({ min: 1, max: 1e9 }).map(String),
    fc.constant(encodeResourceVersion({ east: "12", west: "7" })),
    fc.constant(encodeResourceVersion({ east: "5" })),
  ),
  generation: fc.integer({ min: 0, max: 2 ** 50 }),
  creationTimestamp: time,
  deletionGracePeriodSeconds: fc.integer({ min: 0, max: 100 }),
  labels: stringMap,
  annotations: stringMap,
  ownerReferences: fc.array(
    fc.record({
      kind: word,
      name: word,
      uid: fc.uuid(),
      controller: fc.boolean(),
    }),
    { maxLength: 2 },
  ),
  finalizers: fc.array(word, { maxLength: 2 }),
  managedFields: fc.array(
    fc.record({
      manager: word,
      operation: fc.constantFrom("Apply", "Update"),
      time,
      fieldsV1: fc.uint8Array({ maxLength: 20 }),
    }),
    { maxLength: 2 },
  ),
}, { requiredKeys: ["name"] });

const configMap = fc.record({
  metadata: objectMeta,
  data: stringMap,
  immutable: fc.boolean(),
  binaryData: fc.dictionary(word, fc.uint8Array({ maxLength: 8 }), {
    maxKeys: 2,
  }),
}, { requiredKeys: ["metadata"] });

/** An edit MCA makes, applied the same way to a stub and to the oracle's JSON. */
const edit = fc.oneof(
  fc.record({
    op: fc.constant("decorate"),
    cluster: fc.constantFrom("east", "west"),
  }),
  fc.record({ op: fc.constant("undecorate") }),
  fc.record({
    op: fc.constant("namespace"),
    from: fc.constantFrom("app-ns", "remote-ns"),
    to: fc.constantFrom("remote-ns", "app-ns", "x"),
  }),
);
type Edit = { op: string; cluster?: string; from?: string; to?: string };

function applyEdits(body: unknown, edits: Edit[]): void {
  for (const e of edits) {
    if (e.op === "decorate") decorateObjects(body, e.cluster!);
    else if (e.op === "undecorate") undecorateObject(body);
    else rewriteBodyNamespace(body, e.from!, e.to!);
  }
}

/** Absent and empty are one on the wire: compare without empty strings, maps and lists. */
function normal(value: unknown): unknown {
  if (Array.isArray(value)) return value.length ? value.map(normal) : undefined;
  if (value !== null && typeof value === "object") {
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) {
      const n = normal(v);
      if (n !== undefined && n !== "") out[k] = n;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return value;
}

Deno.test("protobuf fuzz: an object rewritten on its stub decodes as the JSON rewrite", () => {
  fc.assert(
    fc.property(configMap, fc.array(edit, { maxLength: 4 }), (cm, edits) => {
      const body = oracleBody("ConfigMap", cm as Json);
      const stub = decodeObject(body);
      const reference = oracleReadBody(body).object;
      assert.deepEqual(objectLabels(stub), objectLabels(reference));
      applyEdits(stub, edits);
      applyEdits(reference, edits);
      const out = oracleReadBody(encodeObject(stub));
      assert.equal(out.kind, "ConfigMap");
      assert.deepEqual(normal(out.object), normal(reference));
    }),
    propertyRuns(400),
  );
});

Deno.test("protobuf fuzz: no rewrite, no byte changed", () => {
  fc.assert(
    fc.property(configMap, (cm) => {
      const body = oracleBody("ConfigMap", cm as Json);
      assert.deepEqual(encodeObject(decodeObject(body)), body);
    }),
    propertyRuns(200),
  );
});

const listOf = fc.record({
  rv: fc.integer({ min: 1, max: 1e6 }).map(String),
  items: fc.array(configMap, { maxLength: 4 }),
  continue: fc.constantFrom("", "token"),
  remainingItemCount: fc.constantFrom(undefined, 3),
});

Deno.test("protobuf fuzz: merged lists decode as the merged JSON lists", () => {
  fc.assert(
    fc.property(listOf, listOf, (a, b) => {
      const encode = (l: typeof a) =>
        oracleBody("ConfigMapList", {
          metadata: {
            resourceVersion: l.rv,
            continue: l.continue,
            ...(l.remainingItemCount
              ? { remainingItemCount: l.remainingItemCount }
              : {}),
          },
          items: l.items,
        });
      const bodies = [encode(a), encode(b)];
      const names = ["east", "west"];
      const namespace = { app: "app-ns", remote: "remote-ns" };
      const merge = (parsed: Json[]) =>
        mergeListAnswers(
          parsed.map((body, i) => ({ name: names[i], status: 200, body })),
          { missing: [], namespace },
        );
      const fromStubs = merge(bodies.map((b) => decodeObject(b)));
      const fromJson = merge(bodies.map((b) => ({
        kind: "ConfigMapList",
        items: [], // JSON always has it; the oracle leaves an empty list out
        ...oracleReadBody(b).object,
      })));
      assert.equal(fromStubs.kind, "merged");
      assert.equal(fromJson.kind, "merged");
      if (fromStubs.kind !== "merged" || fromJson.kind !== "merged") return;
      const out = oracleReadBody(encodeObject(fromStubs.body));
      const { kind: _, ...expected } = fromJson.body;
      assert.deepEqual(normal(out.object), normal(expected));
    }),
    propertyRuns(150),
  );
});

Deno.test("protobuf fuzz: watch events rewritten in their frames", () => {
  fc.assert(
    fc.property(
      fc.constantFrom("ADDED", "MODIFIED", "DELETED", "BOOKMARK"),
      fc.array(configMap, { minLength: 1, maxLength: 3 }),
      fc.integer({ min: 1, max: 7 }),
      (type, objects, chunk) => {
        const frames = objects.map((cm) =>
          oracleEncode("WatchEvent", {
            type,
            object: { raw: oracleBody("ConfigMap", cm as Json) },
          })
        );
        const stream = new Uint8Array(
          frames.reduce((n, f) => n + 4 + f.length, 0),
        );
        let at = 0;
        for (const f of frames) {
          stream.set(lengthPrefixed(f), at);
          at += 4 + f.length;
        }
        const reader = new FrameReader();
        const read: Uint8Array[] = [];
        for (let i = 0; i < stream.length; i += chunk) {
          read.push(...reader.push(stream.subarray(i, i + chunk)));
        }
        assert.equal(reader.pending, 0);
        assert.deepEqual(read, frames.map((f) => Uint8Array.from(f)));
        for (const [i, frame] of read.entries()) {
          const event = decodeWatchEvent(frame);
          assert.equal(event.type, type);
          decorateObjects(event, "east", { east: "9", west: "4" });
          const decoded = oracleDecode("WatchEvent", encodeWatchEvent(event));
          const object = decoded.object as { raw: string };
          const inner = oracleReadBody(
            Uint8Array.from(atob(object.raw), (c) => c.charCodeAt(0)),
          ).object;
          const expected =
            oracleReadBody(oracleBody("ConfigMap", objects[i] as Json)).object;
          decorateObjects(expected, "east", { east: "9", west: "4" });
          assert.deepEqual(normal(inner), normal(expected));
        }
      },
    ),
    propertyRuns(150),
  );
});

Deno.test("protobuf fuzz: hostile bytes are a ProtobufError or a stub that writes back", () => {
  fc.assert(
    fc.property(
      configMap,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
        maxLength: 4,
      }),
      fc.option(fc.nat()),
      (cm, flips, cut) => {
        const body = oracleBody("ConfigMap", cm as Json).slice();
        for (const [at, value] of flips) body[at % body.length] = value;
        const bytes = cut === null
          ? body
          : body.subarray(0, cut % (body.length + 1));
        try {
          const stub = decodeObject(bytes);
          decorateObjects(stub, "east");
          encodeObject(stub);
          decodeWatchEvent(bytes);
        } catch (error) {
          if (!(error instanceof ProtobufError)) throw error;
        }
      },
    ),
    propertyRuns(500),
  );
});

Deno.test("protobuf: Status and DeleteOptions are kept byte for byte", () => {
  const status = oracleBody("Status", {
    status: "Failure",
    message: "gone",
    reason: "Expired",
    code: 410,
  });
  const stub = decodeObject(status);
  assert.equal(stub.kind, "Status");
  assert.equal(stub.code, 410);
  decorateObjects(stub, "east");
  undecorateObject(stub);
  assert.deepEqual(encodeObject(stub), status);
  const options = oracleBody("DeleteOptions", {
    gracePeriodSeconds: 5,
    propagationPolicy: "Foreground",
  });
  const opts = decodeObject(options);
  rewriteBodyNamespace(opts, "app-ns", "remote-ns");
  undecorateObject(opts);
  assert.deepEqual(encodeObject(opts), options);
});

Deno.test("protobuf: a body without the magic is refused", () => {
  assert.throws(
    () => decodeObject(new TextEncoder().encode('{"kind":"ConfigMap"}')),
    ProtobufError,
  );
});

Deno.test("protobuf: MCA's own ERROR event decodes as kube-apiserver's", () => {
  const event = goneEvent("the set of clusters changed; list again");
  const frame = encodeStatusEvent(event);
  const decoded = oracleDecode("WatchEvent", frame);
  assert.equal(decoded.type, "ERROR");
  const raw = (decoded.object as { raw: string }).raw;
  const inner = oracleReadBody(
    Uint8Array.from(atob(raw), (c) => c.charCodeAt(0)),
  );
  assert.equal(inner.kind, "Status");
  const status = event.object as Record<string, unknown>;
  assert.deepEqual(inner.object, {
    metadata: {},
    status: "Failure",
    message: status.message,
    reason: "Expired",
    code: 410,
  });
  // and MCA reads it back as the same event
  const stub = decodeWatchEvent(frame);
  assert.equal((stub.object as Record<string, unknown>).code, 410);
});
