import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect, type TLSSocket } from "node:tls";
import { startFixture } from "../support/sidecar_fixture.ts";
import { DEFAULT_FAKE_TOKEN } from "../support/fake_upstream.ts";

function callLines(logs: string[]) {
  return logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "api call");
}

/** Sends a raw HTTP/1.1 head over TLS and returns the socket and its first bytes. */
async function rawTls(
  port: number,
  ca: string,
  head: string,
): Promise<{ socket: TLSSocket; first: string }> {
  const socket = connect({
    host: "127.0.0.1",
    port,
    ca,
    servername: "localhost",
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", () => resolve());
    socket.once("error", reject);
  });
  const first = new Promise<string>((resolve) => {
    socket.once(
      "data",
      (c: Uint8Array) => resolve(new TextDecoder().decode(c)),
    );
  });
  socket.write(head);
  return { socket, first: await first };
}

function readExactly(socket: TLSSocket, n: number): Promise<Uint8Array> {
  const { promise, resolve } = Promise.withResolvers<Uint8Array>();
  const parts: Uint8Array[] = [];
  let got = 0;
  function onData(c: Uint8Array) {
    parts.push(c);
    got += c.length;
    if (got >= n) {
      socket.off("data", onData);
      const all = new Uint8Array(got);
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
      resolve(all.subarray(0, n));
    }
  }
  socket.on("data", onData);
  return promise;
}

async function closeSocket(socket: TLSSocket): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  socket.once("close", () => resolve());
  socket.destroy();
  await promise;
}

Deno.test("upgrade: SPDY/3.1 exec upgrade is relayed byte for byte", async () => {
  const f = await startFixture();
  try {
    const { socket, first } = await rawTls(
      f.port,
      f.appCa(),
      "POST /api/v1/namespaces/team-a/pods/p/exec?command=sh&stdin=true HTTP/1.1\r\n" +
        "Host: 127.0.0.1\r\nAuthorization: Bearer mca-placeholder-token\r\n" +
        "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n" +
        "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n" +
        "X-Stream-Protocol-Version: channel.k8s.io\r\nContent-Length: 0\r\n\r\n",
    );
    assert.match(first, /^HTTP\/1.1 101 /);
    assert.match(first, /Upgrade: SPDY\/3.1/i);
    assert.match(first, /X-Stream-Protocol-Version: v4.channel.k8s.io/i);
    const payload = new Uint8Array(200_000).map((_, i) => i % 251);
    const echoed = readExactly(socket, payload.length);
    socket.write(payload);
    assert.deepEqual(await echoed, payload);
    await closeSocket(socket);
    const seen = f.upstream.requests.find((r) => r.url.includes("/exec"))!;
    assert.equal(seen.headers.authorization, `Bearer ${DEFAULT_FAKE_TOKEN}`);
    const { promise, resolve } = Promise.withResolvers<void>();
    const poll = setInterval(() => {
      if (callLines(f.logs).some((l) => l.upgrade)) {
        clearInterval(poll);
        resolve();
      }
    }, 5);
    await promise;
    const line = callLines(f.logs).find((l) => l.upgrade);
    assert.equal(line.subresource, "exec");
    assert.equal(line.status, 101);
    assert.ok(line.bytesIn >= payload.length);
  } finally {
    await f.close();
  }
});

function wsFrame(payload: Uint8Array): Uint8Array {
  const mask = new Uint8Array([1, 2, 3, 4]);
  const frame = new Uint8Array(2 + 4 + payload.length);
  frame[0] = 0x82; // FIN + binary
  frame[1] = 0x80 | payload.length; // masked, length < 126
  frame.set(mask, 2);
  payload.forEach((b, i) => frame[6 + i] = b ^ mask[i % 4]);
  return frame;
}

Deno.test("upgrade: WebSocket v5.channel.k8s.io upgrade is relayed", async () => {
  const f = await startFixture();
  try {
    const key = "dGhlIHNhbXBsZSBub25jZQ==";
    const { socket, first } = await rawTls(
      f.port,
      f.appCa(),
      "GET /api/v1/namespaces/team-a/pods/p/attach?stdout=true HTTP/1.1\r\n" +
        "Host: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
        "Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.c2VjcmV0," +
        " v5.channel.k8s.io, v4.channel.k8s.io\r\n\r\n",
    );
    assert.match(first, /^HTTP\/1.1 101 /);
    assert.match(first, /Sec-WebSocket-Protocol: v5.channel.k8s.io/i);
    const accept = createHash("sha1")
      .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B85").digest("base64");
    assert.ok(first.includes(accept));
    const payload = new TextEncoder().encode("\x01hello from stdin");
    const reply = readExactly(socket, 2 + payload.length);
    socket.write(wsFrame(payload));
    const got = await reply;
    assert.equal(got[0], 0x82);
    assert.equal(got[1], payload.length);
    assert.deepEqual(got.subarray(2), payload);
    await closeSocket(socket);
    const seen = f.upstream.requests.find((r) => r.url.includes("/attach"))!;
    assert.equal(
      seen.headers["sec-websocket-protocol"],
      "v5.channel.k8s.io, v4.channel.k8s.io",
      "a bearer token passed as a subprotocol never reaches upstream",
    );
    assert.equal(seen.headers.authorization, `Bearer ${DEFAULT_FAKE_TOKEN}`);
  } finally {
    await f.close();
  }
});

Deno.test("upgrade: an upstream refusal of an upgrade is a normal response", async () => {
  const f = await startFixture();
  try {
    const { socket, first } = await rawTls(
      f.port,
      f.appCa(),
      "POST /status/403 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n" +
        "Upgrade: SPDY/3.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert.match(first, /^HTTP\/1.1 403 /);
    await closeSocket(socket);
  } finally {
    await f.close();
  }
});
