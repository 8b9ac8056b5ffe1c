import assert from "node:assert/strict";
import { StreamClients } from "../../lib/clusters/stream_clients.ts";
import { defaultTestTls } from "../support/test_certs.ts";

/** Stand-in clients that only record being closed. */
function fakes(): { made: Array<{ closed: boolean }>; make: () => never } {
  const made: Array<{ closed: boolean }> = [];
  const make = () => {
    const c = {
      closed: false,
      close() {
        c.closed = true;
      },
    };
    made.push(c);
    return c as unknown as never;
  };
  return { made, make };
}

Deno.test("stream clients: at most perClient streams share a client; a full pool opens another", () => {
  const { made, make } = fakes();
  const pool = new StreamClients(make, { perClient: 3 });
  const leases = Array.from({ length: 7 }, () => pool.acquire());
  assert.equal(made.length, 3);
  assert.equal(pool.clients, 3);
  // 3 + 3 + 1: each client carries at most 3
  const per = made.map((m) =>
    leases.filter((l) => (l.client as unknown) === m).length
  );
  assert.deepEqual(per, [3, 3, 1]);
  // a freed place is used again before a new client is made
  leases[0].release();
  leases[0].release(); // idempotent: frees one place only
  pool.acquire();
  pool.acquire();
  assert.equal(made.length, 3);
  assert.deepEqual(
    made.map((m) => m.closed),
    [false, false, false],
  );
});

Deno.test("stream clients: idle clients beyond one are closed; after close, each closes with its last stream", () => {
  const { made, make } = fakes();
  const pool = new StreamClients(make, { perClient: 2 });
  const a = [pool.acquire(), pool.acquire()];
  const b = [pool.acquire(), pool.acquire()];
  assert.equal(made.length, 2);
  for (const l of a) l.release();
  // the first client is idle and kept as the spare
  assert.deepEqual(made.map((m) => m.closed), [false, false]);
  b[0].release();
  pool.close();
  assert.deepEqual(made.map((m) => m.closed), [true, false]);
  assert.throws(() => pool.acquire(), /closed/);
  b[1].release();
  assert.deepEqual(made.map((m) => m.closed), [true, true]);
  assert.equal(pool.clients, 0);
});

/** Established TCP connections to `port` on this host (`/proc/net/tcp`). */
function connectionsTo(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return Deno.readTextFileSync("/proc/net/tcp").split("\n").filter((l) => {
    const f = l.trim().split(/\s+/);
    return f[2]?.endsWith(hex) && f[3] === "01";
  }).length;
}

Deno.test("stream clients: 150 streams to an HTTP/2 server ride on 2 connections, each one its own stream", async () => {
  const tls = defaultTestTls();
  const encoder = new TextEncoder();
  const open = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: tls.server.certPem,
    key: tls.server.keyPem,
    onListen() {},
  }, (req) => {
    const id = new URL(req.url).searchParams.get("id");
    let mine: ReadableStreamDefaultController<Uint8Array>;
    return new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          mine = c;
          open.add(c);
          c.enqueue(encoder.encode(`{"id":"${id}"}\n`));
        },
        cancel() {
          open.delete(mine);
        },
      }),
    );
  });
  const pool = new StreamClients(() =>
    Deno.createHttpClient({
      caCerts: [tls.ca.certPem],
      http1: true,
      http2: true,
    })
  );
  const aborter = new AbortController();
  const leases = Array.from({ length: 150 }, () => pool.acquire());
  try {
    const firsts = await Promise.all(leases.map(async (lease, i) => {
      const answer = await fetch(
        `https://127.0.0.1:${server.addr.port}/watch?id=${i}`,
        { client: lease.client, signal: aborter.signal },
      );
      const reader = answer.body!.getReader();
      const { value } = await reader.read();
      reader.releaseLock();
      return new TextDecoder().decode(value);
    }));
    firsts.forEach((line, i) => assert.equal(line, `{"id":"${i}"}\n`));
    assert.equal(open.size, 150);
    assert.equal(pool.clients, 2);
    assert.equal(connectionsTo(server.addr.port), 2);
  } finally {
    aborter.abort();
    for (const l of leases) l.release();
    pool.close();
    await server.shutdown();
  }
});
