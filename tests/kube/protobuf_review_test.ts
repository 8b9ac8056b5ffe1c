import assert from "node:assert/strict";
import fc from "fast-check";
import { propertyRuns } from "../support/property.ts";
import { oracleBody } from "../support/k8s_protobuf_oracle.ts";
import { decodeProtobufReview } from "../../lib/kube/protobuf_review.ts";

const word = fc.stringMatching(/^[a-z0-9.-]{0,12}$/);
const resourceAttributes = fc.record({
  namespace: word,
  verb: word,
  group: word,
  version: word,
  resource: word,
  subresource: word,
  name: word,
}, { requiredKeys: [] });
const nonResourceAttributes = fc.record({
  path: fc.stringMatching(/^\/[a-z0-9/*-]{0,16}$/),
  verb: word,
}, { requiredKeys: [] });

function review(spec: Record<string, unknown>): Uint8Array {
  return oracleBody(
    "SelfSubjectAccessReview",
    { metadata: {}, spec },
    "authorization.k8s.io/v1",
  );
}

Deno.test("protobuf review: attributes encoded by protobufjs read back the same", () => {
  fc.assert(
    fc.property(resourceAttributes, (attrs) => {
      assert.deepEqual(
        decodeProtobufReview(review({ resourceAttributes: attrs })),
        // protobufjs writes every set string, empty ones too
        { spec: { resourceAttributes: { ...attrs } } },
      );
    }),
    propertyRuns(200),
  );
  fc.assert(
    fc.property(nonResourceAttributes, (attrs) => {
      assert.deepEqual(
        decodeProtobufReview(review({ nonResourceAttributes: attrs })),
        { spec: { nonResourceAttributes: { ...attrs } } },
      );
    }),
    propertyRuns(100),
  );
});

Deno.test("protobuf review: bytes that are not a review give undefined, never a throw", () => {
  assert.equal(decodeProtobufReview(new TextEncoder().encode("{}")), undefined);
  assert.equal(decodeProtobufReview(review({})), undefined); // no attributes
  const good = review({ resourceAttributes: { verb: "get" } });
  fc.assert(
    fc.property(fc.integer({ min: 5, max: good.length - 1 }), (cut) => {
      decodeProtobufReview(good.subarray(0, cut)); // must not throw
    }),
    propertyRuns(100),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (tail) => {
      const bytes = new Uint8Array(4 + tail.length);
      bytes.set([0x6b, 0x38, 0x73, 0x00]);
      bytes.set(tail, 4);
      decodeProtobufReview(bytes);
    }),
    propertyRuns(300),
  );
});
