import assert from "node:assert/strict";
import {
  formatTraceparent,
  parseTraceparent,
  randomId,
  ratioSampler,
  samplerFromEnv,
} from "../../lib/observe/trace_context.ts";

const TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

Deno.test("trace context: a valid traceparent round-trips", () => {
  const ctx = parseTraceparent(TP);
  assert.deepEqual(ctx, {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: "b7ad6b7169203331",
    sampled: true,
  });
  assert.equal(formatTraceparent(ctx!), TP);
});

Deno.test("trace context: invalid values start a new trace", () => {
  for (
    const bad of [
      "",
      `${TP}, ${TP}`, // two values joined: what OTEL_DENO + pass-through sends
      TP.replace("0af7", "0AF7"),
      "ff" + TP.slice(2),
      `00-${"0".repeat(32)}-b7ad6b7169203331-01`,
      `00-0af7651916cd43dd8448eb211c80319c-${"0".repeat(16)}-01`,
      TP + "-extra",
    ]
  ) assert.equal(parseTraceparent(bad), undefined, bad);
  assert.equal(parseTraceparent(undefined), undefined);
});

Deno.test("trace context: random ids have the right length and are never zero", () => {
  assert.match(randomId(16), /^[0-9a-f]{32}$/);
  assert.match(randomId(8), /^[0-9a-f]{16}$/);
});

Deno.test("sampler: parent-based follows the parent's flag, ratio decides roots", () => {
  const s = samplerFromEnv("parentbased_traceidratio", "0");
  const id = "0af7651916cd43dd8448eb211c80319c";
  assert.equal(
    s(id, { traceId: id, spanId: "b7ad6b7169203331", sampled: true }),
    true,
  );
  assert.equal(
    s(id, { traceId: id, spanId: "b7ad6b7169203331", sampled: false }),
    false,
  );
  assert.equal(s(id), false);
  assert.equal(samplerFromEnv(undefined, undefined)(id), true);
  assert.equal(
    samplerFromEnv("always_off")(id, {
      traceId: id,
      spanId: "1".repeat(16),
      sampled: true,
    }),
    false,
  );
  assert.equal(samplerFromEnv("traceidratio", "1")(id), true);
});

Deno.test("sampler: traceidratio 0.01 keeps about 1 % of random trace ids", () => {
  const s = ratioSampler(0.01);
  let kept = 0;
  for (let i = 0; i < 20000; i++) if (s(randomId(16))) kept++;
  assert.ok(kept > 100 && kept < 320, `kept ${kept} of 20000`);
});

Deno.test("sampler: unknown names and bad ratios are clear errors", () => {
  assert.throws(
    () => samplerFromEnv("jaeger_remote"),
    /OTEL_TRACES_SAMPLER=jaeger_remote is not supported/,
  );
  assert.throws(
    () => samplerFromEnv("traceidratio", "2"),
    /OTEL_TRACES_SAMPLER_ARG=2 is not a ratio/,
  );
});
