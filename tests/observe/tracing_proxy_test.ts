/**
 * Trace propagation through the real sidecar in front of fake upstreams:
 * what the API server receives, with the tracer on and off.
 */
import assert from "node:assert/strict";
import { appCall, startFixture } from "../support/sidecar_fixture.ts";
import { calls, ROUTING } from "../support/multicluster.ts";
import { samplerFromEnv } from "../../lib/observe/trace_context.ts";
import type { FinishedSpan } from "../../lib/observe/otlp_encode.ts";
import { startTracing } from "../../lib/observe/tracing.ts";

const APP_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const APP_TP = `00-${APP_TRACE}-00f067aa0ba902b7-01`;

function tracer() {
  const spans: FinishedSpan[] = [];
  const tracing = startTracing({
    sampler: samplerFromEnv("parentbased_always_on"),
    exporter: {
      add: (s) => void spans.push(s),
      flush: async () => {},
      close: async () => {},
    },
  });
  return { spans, observer: tracing.observer };
}

/**
 * Sends the app's GET of a mapped ConfigMap through a traced sidecar and
 * returns what the `east` API server received plus the spans recorded.
 */
async function tracedMappedGet(headers: Record<string, string>) {
  const t = tracer();
  const f = await startFixture({
    remotes: ["east", "west"],
    routing: ROUTING,
    observers: [t.observer],
  });
  try {
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/app-ns/configmaps/cfg",
      { headers },
    );
    assert.equal(answer.status, 200, answer.text);
    const got = f.remotes.get("east")!.requests.at(-1)!;
    return { got, spans: t.spans, logged: calls(f).at(-1) };
  } finally {
    await f.close();
  }
}

Deno.test("tracing on: the API server gets exactly one traceparent, child of MCA's client span", async () => {
  const { got, spans, logged } = await tracedMappedGet({
    traceparent: APP_TP,
    tracestate: "app=1",
  });
  const tp = got.headers.traceparent;
  assert.equal(
    typeof tp,
    "string",
    `one traceparent, got ${JSON.stringify(tp)}`,
  );
  assert.match(tp as string, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  const [, traceId, parent] = (tp as string).split("-");
  assert.equal(traceId, APP_TRACE);
  assert.equal(got.headers.tracestate, "app=1");
  const client = spans.find((s) => s.kind === 3)!;
  const server = spans.find((s) => s.kind === 2)!;
  assert.equal(parent, client.spanId);
  assert.equal(client.parentSpanId, server.spanId);
  assert.equal(server.parentSpanId, "00f067aa0ba902b7");
  assert.equal(server.attributes["mca.rule"], "mapped");
  assert.equal(logged.traceId, APP_TRACE);
});

Deno.test("tracing on: a merged LIST sends one traceparent per cluster, one client span each", async () => {
  const t = tracer();
  const f = await startFixture({
    remotes: ["east", "west"],
    routing: ROUTING,
    observers: [t.observer],
  });
  try {
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/spread-1/configmaps",
      {
        headers: { traceparent: APP_TP },
      },
    );
    assert.equal(answer.status, 200, answer.text);
    const sent = ["east", "west"].map((c) =>
      String(f.remotes.get(c)!.requests.at(-1)!.headers.traceparent)
    );
    const clients = t.spans.filter((s) => s.kind === 3);
    assert.deepEqual(clients.map((s) => s.attributes["mca.cluster"]).sort(), [
      "east",
      "west",
    ]);
    assert.deepEqual(
      sent.map((tp) => tp.split("-")[2]).sort(),
      clients.map((s) => s.spanId).sort(),
    );
    for (const tp of sent) assert.equal(tp.split("-")[1], APP_TRACE);
  } finally {
    await f.close();
  }
});

Deno.test("tracing off: the app's traceparent reaches the API server unchanged", async () => {
  const f = await startFixture({});
  try {
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/other/configmaps/x",
      {
        headers: { traceparent: APP_TP, tracestate: "app=1" },
      },
    );
    assert.equal(answer.status, 200, answer.text);
    const got = f.upstream.requests.at(-1)!;
    assert.equal(got.headers.traceparent, APP_TP);
    assert.equal(got.headers.tracestate, "app=1");
    assert.equal(calls(f).at(-1).traceId, undefined);
  } finally {
    await f.close();
  }
});

Deno.test("tracing on: an invalid traceparent starts a new trace and the app's tracestate is dropped", async () => {
  const { got } = await tracedMappedGet({
    traceparent: "00-not-a-trace-01",
    tracestate: "app=1",
  });
  const tp = String(got.headers.traceparent);
  assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  assert.notEqual(tp.split("-")[1], APP_TRACE);
  assert.equal(got.headers.tracestate, undefined);
});
