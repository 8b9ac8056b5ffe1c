/**
 * Tests for the fake kube-apiserver double, hit directly with node:https and
 * raw node:tls clients that trust its CA.
 */

import assert from "node:assert/strict";
import https from "node:https";
import type { IncomingMessage } from "node:http";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import { gunzipSync } from "node:zlib";
import {
  DEFAULT_FAKE_TOKEN,
  type FakeUpstream,
  GZIP_PLAIN_BODY,
  GZIP_WIRE_BODY,
  startFakeUpstream,
} from "./support/fake_upstream.ts";

interface Reply {
  status: number;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

interface RequestOptions {
  method?: string;
  token?: string | null;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}

function authHeaders(token: string | null | undefined): Record<string, string> {
  if (token === null) return {};
  return { Authorization: `Bearer ${token ?? DEFAULT_FAKE_TOKEN}` };
}

/** Starts a request on its own connection (agent: false). */
function send(
  up: FakeUpstream,
  path: string,
  options: RequestOptions = {},
): Promise<IncomingMessage> & { request: ReturnType<typeof https.request> } {
  let request!: ReturnType<typeof https.request>;
  const promise = new Promise<IncomingMessage>((resolve, reject) => {
    request = https.request(`${up.url}${path}`, {
      method: options.method ?? "GET",
      ca: up.caPem,
      agent: false,
      headers: { ...authHeaders(options.token), ...options.headers },
    }, resolve);
    request.on("error", reject);
    request.end(options.body);
  });
  return Object.assign(promise, { request });
}

/** Reads a whole response body and waits for its connection to close. */
function collect(res: IncomingMessage): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (chunk: Buffer) => chunks.push(chunk));
    res.on("error", reject);
    res.on("end", () => {
      const reply = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: Buffer.concat(chunks),
      };
      if (res.socket.destroyed) resolve(reply);
      else {
        res.socket.once("close", () => resolve(reply));
        res.socket.destroy();
      }
    });
  });
}

async function fetchReply(
  up: FakeUpstream,
  path: string,
  options: RequestOptions = {},
): Promise<Reply> {
  return collect(await send(up, path, options));
}

const UNAUTHORIZED = {
  kind: "Status",
  apiVersion: "v1",
  metadata: {},
  status: "Failure",
  message: "Unauthorized",
  reason: "Unauthorized",
  code: 401,
};

/** A raw TLS connection with a buffer of everything received. */
class RawConn {
  socket: tls.TLSSocket;
  received: Buffer = Buffer.alloc(0);
  ended = false;
  closed: Promise<void>;
  #wake: (() => void) | undefined;

  constructor(socket: tls.TLSSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once("close", resolve));
    socket.on("data", (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.#wake?.();
    });
    socket.on("end", () => {
      this.ended = true;
      this.#wake?.();
    });
    socket.on("close", () => this.#wake?.());
  }

  static connect(up: FakeUpstream): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: "127.0.0.1",
        port: up.port,
        ca: up.caPem,
        servername: "localhost",
      });
      socket.once("error", reject);
      socket.once("secureConnect", () => {
        socket.off("error", reject);
        resolve(new RawConn(socket));
      });
    });
  }

  /** Waits until `ready(received)` holds; fails if the peer ends first. */
  async until(ready: (received: Buffer) => boolean): Promise<void> {
    while (!ready(this.received)) {
      if (this.ended || this.socket.destroyed) {
        throw new Error(`connection ended; got ${this.received.toString()}`);
      }
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  /** Reads an HTTP response head; returns status, headers and leftover. */
  async readHead(): Promise<{ status: number; headers: Map<string, string> }> {
    await this.until((b) => b.includes("\r\n\r\n"));
    const end = this.received.indexOf("\r\n\r\n");
    const lines = this.received.subarray(0, end).toString().split("\r\n");
    this.received = this.received.subarray(end + 4);
    const status = Number(lines[0].split(" ")[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      headers.set(
        line.slice(0, colon).trim().toLowerCase(),
        line.slice(colon + 1).trim(),
      );
    }
    return { status, headers };
  }

  /** Takes exactly `n` bytes off the front of the buffer. */
  async take(n: number): Promise<Buffer> {
    await this.until((b) => b.length >= n);
    const out = this.received.subarray(0, n);
    this.received = this.received.subarray(n);
    return out;
  }

  /** Waits for the peer to close. */
  async waitEnd(): Promise<void> {
    while (!this.ended && !this.socket.destroyed) {
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  async close(): Promise<void> {
    this.socket.destroy();
    await this.closed;
  }
}

function upgradeHead(path: string, lines: string[]): string {
  return [`POST ${path} HTTP/1.1`, "Host: 127.0.0.1", ...lines, "", ""].join(
    "\r\n",
  );
}

function maskedFrame(opcode: number, payload: Buffer): Buffer {
  assert.ok(payload.length < 126);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i] ^= mask[i & 3];
  return Buffer.concat([
    Buffer.from([0x80 | opcode, 0x80 | payload.length]),
    mask,
    masked,
  ]);
}

Deno.test("fake upstream: bearer token accepted, others get 401 Status", async () => {
  const up = await startFakeUpstream({ token: "tok-1" });
  try {
    const ok = await fetchReply(up, "/version", { token: "tok-1" });
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body.toString()).major, "1");

    for (const token of ["wrong", null]) {
      const denied = await fetchReply(up, "/version", { token });
      assert.equal(denied.status, 401);
      assert.equal(denied.headers["content-type"], "application/json");
      assert.deepEqual(JSON.parse(denied.body.toString()), UNAUTHORIZED);
    }
    const lower = await fetchReply(up, "/version", {
      token: null,
      headers: { Authorization: "bearer tok-1" },
    });
    assert.equal(lower.status, 401);

    up.setToken("tok-2");
    assert.equal(
      (await fetchReply(up, "/version", { token: "tok-1" })).status,
      401,
    );
    assert.equal(
      (await fetchReply(up, "/version", { token: "tok-2" })).status,
      200,
    );

    assert.equal(up.requests.length, 6);
    assert.equal(up.requests[0].headers.authorization, "Bearer tok-1");
    assert.equal(up.requests[2].headers.authorization, undefined);
    assert.equal(up.requests[0].method, "GET");
    assert.equal(up.requests[0].url, "/version");
  } finally {
    await up.close();
  }
});

Deno.test("fake upstream: configmap routes, write echo, status, gzip", async () => {
  const up = await startFakeUpstream();
  try {
    const cm = await fetchReply(up, "/api/v1/namespaces/ns1/configmaps/cm1");
    assert.equal(cm.status, 200);
    const cmBody = JSON.parse(cm.body.toString());
    assert.equal(cmBody.kind, "ConfigMap");
    assert.deepEqual(
      [cmBody.metadata.namespace, cmBody.metadata.name],
      ["ns1", "cm1"],
    );

    const list = await fetchReply(up, "/api/v1/namespaces/ns1/configmaps");
    assert.equal(JSON.parse(list.body.toString()).kind, "ConfigMapList");

    const payload = randomBytes(100_000);
    const sha = createHash("sha256").update(payload).digest("hex");
    for (
      const [method, code] of [["POST", 201], ["PUT", 200], ["PATCH", 200]]
    ) {
      const echo = await fetchReply(
        up,
        "/api/v1/namespaces/ns1/configmaps" + (method === "POST" ? "" : "/cm1"),
        { method: method as string, body: payload },
      );
      assert.equal(echo.status, code);
      assert.deepEqual(JSON.parse(echo.body.toString()), {
        received: payload.length,
        sha256: sha,
      });
    }
    const posted = up.requests.find((r) => r.method === "POST");
    assert.equal(posted?.bodyBytes, payload.length);
    assert.equal(posted?.bodySha256, sha);

    const forbidden = await fetchReply(up, "/status/403");
    assert.equal(forbidden.status, 403);
    const status = JSON.parse(forbidden.body.toString());
    assert.equal(status.kind, "Status");
    assert.equal(status.reason, "Forbidden");
    assert.equal(status.code, 403);
    assert.equal((await fetchReply(up, "/nope")).status, 404);

    const gz = await fetchReply(up, "/gzip");
    assert.equal(gz.headers["content-encoding"], "gzip");
    assert.deepEqual(new Uint8Array(gz.body), GZIP_WIRE_BODY);
    assert.equal(gunzipSync(gz.body).toString(), GZIP_PLAIN_BODY);
  } finally {
    await up.close();
  }
});

Deno.test("fake upstream: watch streams pushed events in order", async () => {
  const up = await startFakeUpstream();
  try {
    // Headers arrive before any event (flushHeaders).
    const res = await send(
      up,
      "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=100",
    );
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers["transfer-encoding"], "chunked");
    assert.equal(res.headers["content-type"], "application/json");
    const second = await send(
      up,
      "/api/v1/watch/namespaces/default/configmaps",
    );
    await up.waitForWatches(2);
    assert.equal(up.openWatches(), 2);

    const events = [1, 2, 3].map((n) => ({
      type: "ADDED",
      object: { kind: "ConfigMap", metadata: { name: `cm${n}` } },
    }));
    const bodies = Promise.all([collect(res), collect(second)]);
    for (const event of events) up.pushWatchEvent(event);
    up.closeWatches();
    for (const reply of await bodies) {
      const lines = reply.body.toString().split("\n");
      assert.equal(lines.pop(), "");
      assert.deepEqual(lines.map((line) => JSON.parse(line)), events);
    }
    assert.equal(up.openWatches(), 0);
    assert.equal(up.abortedRequests(), 0);
  } finally {
    await up.close();
  }
});

Deno.test("fake upstream: 8 MiB body streams with the right length", async () => {
  const up = await startFakeUpstream();
  try {
    const size = 8 * 1024 * 1024;
    for (const query of ["", "&length=1", "&chunk=1600"]) {
      const res = await send(up, `/big?bytes=${size}${query}`);
      assert.equal(res.statusCode, 200);
      if (query.includes("length")) {
        assert.equal(res.headers["content-length"], String(size));
      } else assert.equal(res.headers["transfer-encoding"], "chunked");
      const reply = await collect(res);
      assert.equal(reply.body.length, size);
      const parsed = JSON.parse(reply.body.toString());
      assert.equal(parsed.kind, "List");
    }
  } finally {
    await up.close();
  }
});

Deno.test("fake upstream: SPDY/3.1 upgrade echoes bytes", async () => {
  const up = await startFakeUpstream();
  const conn = await RawConn.connect(up);
  try {
    conn.socket.write(upgradeHead(
      "/api/v1/namespaces/default/pods/p/exec?command=sh&stdin=true",
      [
        `Authorization: Bearer ${DEFAULT_FAKE_TOKEN}`,
        "Connection: Upgrade",
        "Upgrade: SPDY/3.1",
        "X-Stream-Protocol-Version: v4.channel.k8s.io",
        "X-Stream-Protocol-Version: v3.channel.k8s.io",
        "Content-Length: 0",
      ],
    ));
    const head = await conn.readHead();
    assert.equal(head.status, 101);
    assert.equal(head.headers.get("upgrade"), "SPDY/3.1");
    assert.equal(
      head.headers.get("x-stream-protocol-version"),
      "v4.channel.k8s.io",
    );

    const data = randomBytes(200_000);
    conn.socket.write(data);
    assert.deepEqual(await conn.take(data.length), data);

    const recorded = up.requests.at(-1);
    assert.equal(recorded?.method, "POST");
    assert.equal(recorded?.headers.upgrade, "SPDY/3.1");
    conn.socket.end();
    await conn.waitEnd();
  } finally {
    await conn.close();
    await up.close();
  }
});

Deno.test("fake upstream: WebSocket upgrade echoes masked frames unmasked", async () => {
  const up = await startFakeUpstream();
  const conn = await RawConn.connect(up);
  try {
    const key = randomBytes(16).toString("base64");
    conn.socket.write(
      upgradeHead("/api/v1/namespaces/default/pods/p/exec?command=sh", [
        `Authorization: Bearer ${DEFAULT_FAKE_TOKEN}`,
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        `Sec-WebSocket-Key: ${key}`,
        "Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io",
      ]).replace("POST", "GET"),
    );
    const head = await conn.readHead();
    assert.equal(head.status, 101);
    assert.equal(
      head.headers.get("sec-websocket-accept"),
      createHash("sha1")
        .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B85")
        .digest("base64"),
    );
    assert.equal(
      head.headers.get("sec-websocket-protocol"),
      "v5.channel.k8s.io",
    );

    // Channel 0 (stdin) + text, as a binary frame.
    const payload = Buffer.concat([Buffer.from([0]), Buffer.from("echo hi\n")]);
    conn.socket.write(maskedFrame(0x2, payload));
    const frame = await conn.take(2 + payload.length);
    assert.equal(frame[0], 0x82);
    assert.equal(frame[1], payload.length); // no mask bit
    assert.deepEqual(frame.subarray(2), payload);

    conn.socket.write(maskedFrame(0x8, Buffer.from([0x03, 0xe8])));
    const close = await conn.take(4);
    assert.deepEqual([...close], [0x88, 2, 0x03, 0xe8]);
    await conn.waitEnd();
  } finally {
    await conn.close();
    await up.close();
  }
});

Deno.test("fake upstream: upgrade with bad token or /status/403 is refused", async () => {
  const up = await startFakeUpstream();
  try {
    for (
      const [path, token, code] of [
        ["/api/v1/namespaces/default/pods/p/exec", "bad", 401],
        ["/status/403", DEFAULT_FAKE_TOKEN, 403],
      ] as const
    ) {
      const conn = await RawConn.connect(up);
      try {
        conn.socket.write(upgradeHead(path, [
          `Authorization: Bearer ${token}`,
          "Connection: Upgrade",
          "Upgrade: SPDY/3.1",
          "X-Stream-Protocol-Version: v4.channel.k8s.io",
          "Content-Length: 0",
        ]));
        const head = await conn.readHead();
        assert.equal(head.status, code);
        await conn.waitEnd();
        const body = JSON.parse(conn.received.toString());
        assert.equal(body.kind, "Status");
        assert.equal(body.code, code);
        if (code === 401) assert.deepEqual(body, UNAUTHORIZED);
      } finally {
        await conn.close();
      }
    }
    assert.equal(up.requests.length, 2);
  } finally {
    await up.close();
  }
});

Deno.test("fake upstream: client aborts are counted", async () => {
  const up = await startFakeUpstream();
  try {
    const slow = send(up, "/slow?ms=60000");
    const slowFailed = assert.rejects(slow, /socket hang up|ECONNRESET/);
    await up.waitForRequests(1);
    const closed = new Promise((resolve) =>
      slow.request.once("close", resolve)
    );
    slow.request.destroy();
    await closed;
    await slowFailed;
    await up.waitForAborts(1);
    assert.equal(up.abortedRequests(), 1);

    const watch = await send(
      up,
      "/api/v1/namespaces/default/configmaps?watch=true",
    );
    await up.waitForWatches(1);
    const watchClosed = new Promise((resolve) =>
      watch.socket.once("close", resolve)
    );
    watch.destroy();
    await watchClosed;
    await up.waitForAborts(2);
    assert.equal(up.openWatches(), 0);

    // A finished response is not an abort.
    await fetchReply(up, "/version");
    assert.equal(up.abortedRequests(), 2);
  } finally {
    await up.close();
  }
  assert.equal(up.abortedRequests(), 2);
});

Deno.test("fake upstream: close() tears down open watches and upgrades", async () => {
  const up = await startFakeUpstream();
  const watch = await send(up, "/api/v1/namespaces/default/configmaps?watch=1");
  const watchClosed = new Promise((resolve) =>
    watch.socket.once("close", resolve)
  );
  watch.on("error", () => {});
  watch.on("data", () => {});
  const conn = await RawConn.connect(up);
  conn.socket.write(upgradeHead("/x", [
    `Authorization: Bearer ${DEFAULT_FAKE_TOKEN}`,
    "Connection: Upgrade",
    "Upgrade: SPDY/3.1",
    "Content-Length: 0",
  ]));
  assert.equal((await conn.readHead()).status, 101);
  await up.waitForWatches(1);
  await up.close();
  await conn.waitEnd();
  await conn.close();
  await watchClosed;
  assert.equal(up.abortedRequests(), 0);
  await assert.rejects(up.waitForRequests(100));
});
