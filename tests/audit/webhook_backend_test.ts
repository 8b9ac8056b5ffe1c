import assert from "node:assert/strict";
import { openWebhookBackend } from "../../lib/audit/webhook_backend.ts";

interface Receiver {
  url: string;
  batches: Array<
    { kind: string; apiVersion: string; items: Array<{ n: number }> }
  >;
  /** Status to answer with, per request (cycled: last one repeats). */
  statuses: number[];
  requests: number;
  close(): Promise<void>;
}

function receiver(statuses: number[] = [200]): Receiver {
  const r = { batches: [], statuses, requests: 0 } as unknown as Receiver;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const body = await req.json();
      const status = r.statuses[Math.min(r.requests, r.statuses.length - 1)];
      r.requests++;
      if (status === 200) r.batches.push(body);
      return new Response(null, { status });
    },
  );
  r.url = `http://127.0.0.1:${server.addr.port}/audit`;
  r.close = () => server.shutdown();
  return r;
}

async function until(
  what: string,
  ok: () => boolean,
  ms = 5000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const event = (n: number) => JSON.stringify({ kind: "Event", n });

Deno.test("audit webhook: full batches go out at once as EventLists, the rest after max-wait", async () => {
  const r = receiver();
  const backend = openWebhookBackend(r.url, {
    log: () => {},
    batchMaxSize: 3,
    batchMaxWaitMs: 50,
  });
  for (let i = 0; i < 7; i++) backend.emit(event(i));
  await until("7 events", () => r.batches.flatMap((b) => b.items).length === 7);
  assert.deepEqual(r.batches.map((b) => b.items.length), [3, 3, 1]);
  assert.equal(r.batches[0].kind, "EventList");
  assert.equal(r.batches[0].apiVersion, "audit.k8s.io/v1");
  assert.deepEqual(r.batches.flatMap((b) => b.items.map((e) => e.n)), [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
  ]);
  await backend.close();
  await r.close();
  assert.deepEqual(backend.counters, { written: 7, dropped: 0, errors: 0 });
});

Deno.test("audit webhook: 5xx and 429 are retried with back-off, then delivered", async () => {
  const r = receiver([503, 429, 200]);
  const backend = openWebhookBackend(r.url, {
    log: () => {},
    batchMaxWaitMs: 1,
    initialBackoffMs: 20,
  });
  const started = performance.now();
  backend.emit(event(1));
  await until("delivery", () => r.batches.length === 1);
  // back-off: 20 ms then 40 ms
  assert.ok(performance.now() - started >= 55, "retries waited");
  assert.equal(r.requests, 3);
  await backend.close();
  await r.close();
  assert.deepEqual(backend.counters, { written: 1, dropped: 0, errors: 2 });
});

Deno.test("audit webhook: retries exhausted or a 4xx drop the batch, counted and logged", async () => {
  const r = receiver([500]);
  const logged: string[] = [];
  const backend = openWebhookBackend(r.url, {
    log: (l) => void logged.push(l),
    batchMaxWaitMs: 1,
    initialBackoffMs: 1,
    maxAttempts: 3,
  });
  backend.emit(event(1));
  await until("drop", () => backend.counters.dropped === 1);
  assert.equal(r.requests, 3);
  r.statuses = [400];
  backend.emit(event(2));
  await until("second drop", () => backend.counters.dropped === 2);
  assert.equal(r.requests, 4, "a 400 is not retried");
  await backend.close();
  await r.close();
  assert.equal(
    JSON.parse(logged[0]).msg,
    "audit webhook failed; batch dropped",
  );
});

Deno.test("audit webhook: a full buffer drops new events without blocking emit", async () => {
  const r = receiver([503]);
  const backend = openWebhookBackend(r.url, {
    log: () => {},
    bufferSize: 5,
    batchMaxSize: 100,
    batchMaxWaitMs: 60_000,
    initialBackoffMs: 60_000,
  });
  const started = performance.now();
  for (let i = 0; i < 1000; i++) backend.emit(event(i));
  assert.ok(
    performance.now() - started < 200,
    "emit never waits for the receiver",
  );
  assert.equal(backend.counters.dropped, 995);
  await backend.close(); // one last attempt, no back-off wait
  await r.close();
  assert.equal(backend.counters.dropped, 1000);
});

Deno.test("audit webhook: an unreachable receiver is retried, then dropped", async () => {
  const r = receiver();
  const url = r.url;
  await r.close(); // nothing listens on the port any more
  const backend = openWebhookBackend(url, {
    log: () => {},
    batchMaxWaitMs: 1,
    initialBackoffMs: 1,
    maxAttempts: 2,
  });
  backend.emit(event(1));
  await until("drop", () => backend.counters.dropped === 1);
  assert.equal(backend.counters.errors, 2);
  await backend.close();
});

Deno.test("audit webhook: only http(s) URLs", () => {
  assert.throws(
    () => openWebhookBackend("file:///etc/passwd", { log: () => {} }),
    /--audit-webhook-url must be an http:\/\/ or https:\/\/ URL/,
  );
});
