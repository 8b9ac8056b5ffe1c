/**
 * A pooled keep-alive socket the API server (or a load balancer before it)
 * closes just as MCA sends the next call on it: reads are sent once more on
 * a new connection, as Go's transport does; writes are not.
 *
 * The upstream here (`startRawUpstream`) decides, per connection and per
 * request on it, whether to answer or to close the connection on reading
 * the request head, so the race is the same every run.
 */
import assert from "node:assert/strict";
import { Agent } from "node:https";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { forwardHttp, type Target } from "../../lib/proxy/transport.ts";
import { startRawUpstream } from "../support/raw_upstream.ts";

/**
 * An app-facing HTTP server that forwards each call with `forwardHttp`;
 * with `held`, the app's body is read first and handed over whole, as the
 * pipeline does for bodies with a declared length (one `end(body)`).
 */
async function startProxy(
  upstream: { url: URL; caPem: string },
  options: { held?: boolean } = {},
) {
  const agent = new Agent({ keepAlive: true, ca: upstream.caPem });
  const base: Target = {
    url: upstream.url,
    auth: { agent, tls: { ca: upstream.caPem } },
    connectTimeoutMs: 5000,
  };
  const http = createHttpServer(async (req, res) => {
    const target = options.held ? { ...base, body: await readAll(req) } : base;
    const outcome = await forwardHttp(req, res, target);
    if (outcome.failure) {
      res.writeHead(503, { "content-type": "text/plain" });
      res.end(outcome.failure.message);
    }
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    async call(method: string, body?: string) {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/namespaces`, {
        method,
        body,
      });
      return { status: res.status, text: await res.text() };
    },
    async close() {
      agent.destroy();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

async function readAll(req: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of req) chunks.push(chunk);
  return new Uint8Array(chunks.flatMap((c) => [...c]));
}

Deno.test("transport: a GET on a pooled socket closed under it is sent again on a new connection", async () => {
  // Every connection answers its first request and dies on the second.
  const upstream = await startRawUpstream((head) => head.index === 1);
  const proxy = await startProxy(upstream);
  try {
    for (let i = 0; i < 3; i++) {
      const answer = await proxy.call("GET");
      assert.equal(answer.status, 200, answer.text);
    }
    // 1st call: connection 1; 2nd: killed on 1, retried on 2; 3rd: the same
    // on 2 and 3.
    assert.deepEqual(
      upstream.heads.map((h) => [h.connection, h.index]),
      [[1, 1], [1, 2], [2, 1], [2, 2], [3, 1]],
    );
  } finally {
    await proxy.close();
    await upstream.close();
  }
});

Deno.test("transport: a POST on a pooled socket closed under it is not sent twice", async () => {
  const upstream = await startRawUpstream((head) => head.index === 1);
  const proxy = await startProxy(upstream);
  try {
    assert.equal((await proxy.call("GET")).status, 200);
    const posted = await proxy.call("POST", '{"kind":"Namespace"}');
    assert.equal(posted.status, 503, posted.text);
    assert.equal(
      upstream.heads.filter((h) => h.line.startsWith("POST ")).length,
      1,
    );
  } finally {
    await proxy.close();
    await upstream.close();
  }
});

Deno.test("transport: a GET is retried once, on a fresh connection, never again", async () => {
  // Connection 1 answers its first request; nothing after that is answered.
  const upstream = await startRawUpstream((head) =>
    head.connection === 1 && head.index === 1
  );
  const proxy = await startProxy(upstream);
  try {
    assert.equal((await proxy.call("GET")).status, 200);
    const failed = await proxy.call("GET");
    assert.equal(failed.status, 503, failed.text);
    assert.deepEqual(
      upstream.heads.map((h) => [h.connection, h.index]),
      [[1, 1], [1, 2], [2, 1]],
    );
  } finally {
    await proxy.close();
    await upstream.close();
  }
});

Deno.test("transport: with bodies held whole, a GET is sent again and a POST only once", async () => {
  const upstream = await startRawUpstream((head) => head.index === 1);
  const proxy = await startProxy(upstream, { held: true });
  try {
    assert.equal((await proxy.call("GET")).status, 200);
    const got = await proxy.call("GET");
    assert.equal(got.status, 200, got.text);
    const posted = await proxy.call("POST", '{"kind":"Namespace"}');
    assert.equal(posted.status, 503, posted.text);
    assert.deepEqual(
      upstream.heads.map((h) => [h.connection, h.index, h.line.split(" ")[0]]),
      [[1, 1, "GET"], [1, 2, "GET"], [2, 1, "GET"], [2, 2, "POST"]],
    );
  } finally {
    await proxy.close();
    await upstream.close();
  }
});
