/**
 * Hostile bytes at the listener, through a running sidecar in front of the
 * fake upstream: each must get a Kubernetes `Status` (or a closed
 * connection where HTTP cannot answer), none may reach the upstream, and
 * the sidecar keeps serving. Targets MCA would read differently from the
 * API server (dot segments, encoded slashes, absolute-form), hanging
 * upstreams and token files with control characters have their own tests in
 * tests/pipeline/call_test.ts.
 */
import assert from "node:assert/strict";
import { connect as tcpConnect } from "node:net";
import { connect } from "node:tls";
import {
  appCall,
  rawExchange,
  startFixture,
} from "../support/sidecar_fixture.ts";
import { startListener } from "../../lib/proxy/listener.ts";
import { defaultTestTls } from "../support/test_certs.ts";

const POST = "POST /api/v1/namespaces/a/configmaps HTTP/1.1\r\nhost: x\r\n";
const CASES: Array<[string, string, number, string]> = [
  [
    "Content-Length with Transfer-Encoding (smuggling)",
    `${POST}content-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n` +
    "GET /api/v1/namespaces/smuggled/pods HTTP/1.1\r\nhost: x\r\n\r\n",
    400,
    "BadRequest",
  ],
  [
    "two Content-Lengths",
    `${POST}content-length: 4\r\ncontent-length: 40\r\n\r\nabcd`,
    400,
    "BadRequest",
  ],
  [
    "a bad chunk size",
    `${POST}transfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
    400,
    "BadRequest",
  ],
  [
    "an obfuscated Transfer-Encoding",
    `${POST}transfer-encoding: xchunked\r\ncontent-length: 3\r\n\r\nabc`,
    400,
    "BadRequest",
  ],
  [
    "CONNECT",
    "CONNECT evil.example:443 HTTP/1.1\r\nhost: evil.example:443\r\n\r\n",
    405,
    "MethodNotAllowed",
  ],
  [
    "an h2c upgrade",
    "GET /api/v1/namespaces/a/pods HTTP/1.1\r\nhost: x\r\n" +
    "connection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\n" +
    "http2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    400,
    "BadRequest",
  ],
  ["the HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "BadRequest"],
  [
    "5,000 headers",
    "GET /api/v1/namespaces/a/pods HTTP/1.1\r\nhost: x\r\n" +
    Array.from({ length: 5000 }, (_, i) => `x-h${i}: v`).join("\r\n") +
    "\r\n\r\n",
    431,
    "RequestHeaderFieldsTooLarge",
  ],
  [
    "a 200 KB header",
    "GET /api/v1/namespaces/a/pods HTTP/1.1\r\nhost: x\r\nx-big: " +
    "a".repeat(200_000) + "\r\n\r\n",
    431,
    "RequestHeaderFieldsTooLarge",
  ],
  [
    "a NUL in the target",
    "GET /api/v1/namespaces/a\u0000b/pods HTTP/1.1\r\nhost: x\r\n\r\n",
    400,
    "BadRequest",
  ],
  [
    "a space in the target",
    "GET /api/v1/namespaces/a b/pods HTTP/1.1\r\nhost: x\r\n\r\n",
    400,
    "BadRequest",
  ],
  [
    "bare LF line ends",
    "GET /api/v1/namespaces/a/pods HTTP/1.1\nhost: x\n\n",
    400,
    "BadRequest",
  ],
  [
    "an HTTP/0.9 request line",
    "GET /api/v1/namespaces/a/pods\r\n\r\n",
    400,
    "BadRequest",
  ],
];

Deno.test("hostile: malformed, smuggling and flooding requests get a Status and reach nothing", async () => {
  const f = await startFixture();
  try {
    for (const [what, bytes, code, reason] of CASES) {
      const answer = await rawExchange(f.port, f.appCa(), bytes);
      assert.match(answer, new RegExp(`^HTTP/1\\.1 ${code} `), what);
      const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4));
      assert.equal(body.kind, "Status", what);
      assert.equal(body.reason, reason, what);
      assert.equal(body.code, code, what);
      assert.ok(!answer.includes("smuggled") && !answer.includes("aaaa"), what);
    }
    assert.deepEqual(
      f.upstream.requests.map((r) => `${r.method} ${r.url}`),
      [],
      "nothing reached the upstream",
    );
    const after = await appCall(f, "GET", "/api/v1/namespaces/a/configmaps");
    assert.equal(after.status, 200, "the sidecar still serves");
  } finally {
    await f.close();
  }
});

Deno.test("hostile: plain HTTP on the TLS port is closed, the sidecar keeps serving", async () => {
  const f = await startFixture();
  try {
    const socket = tcpConnect({ host: "127.0.0.1", port: f.port });
    socket.on("error", () => {});
    const closed = new Promise((resolve) => socket.once("close", resolve));
    await new Promise((resolve) => socket.once("connect", resolve));
    const got: Uint8Array[] = [];
    socket.on("data", (c: Uint8Array) => got.push(c));
    socket.write("GET /api/v1/pods HTTP/1.1\r\nhost: x\r\n\r\n");
    await closed;
    assert.equal(got[0]?.[0], 0x15, "a TLS alert record, then close");
    assert.equal(f.upstream.requests.length, 0);
    const after = await appCall(f, "GET", "/api/v1/namespaces/a/configmaps");
    assert.equal(after.status, 200);
  } finally {
    await f.close();
  }
});

Deno.test("hostile: a client trickling its headers (slowloris) is cut at the head bound, a kept-alive one is not", async () => {
  const tls = defaultTestTls();
  const listener = await startListener({
    hosts: ["127.0.0.1"],
    port: 0,
    certPem: tls.server.certPem,
    keyPem: tls.server.keyPem,
    headersTimeoutMs: 300,
  }, {
    request: (_req, res) => res.end("ok"),
    upgrade: (_req, socket) => socket.destroy(),
  });
  try {
    const socket = connect({
      host: "127.0.0.1",
      port: listener.port,
      ca: tls.ca.certPem,
      servername: "localhost",
    });
    socket.on("error", () => {});
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    let closed = false;
    socket.once("close", () => closed = true);
    const line = "GET /api/v1/pods HTTP/1.1\r\nhost: x\r\nx-slow: " +
      "a".repeat(100);
    const started = performance.now();
    for (let i = 0; i < line.length && !closed; i++) {
      socket.write(line[i]);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(closed, "the trickling client was disconnected");
    assert.ok(performance.now() - started < 5000);

    // A normal client on one kept-alive connection: two requests, further
    // apart than the first-head bound, both answered.
    const kept = connect({
      host: "127.0.0.1",
      port: listener.port,
      ca: tls.ca.certPem,
      servername: "localhost",
    });
    await new Promise((resolve) => kept.once("secureConnect", resolve));
    const answers: string[] = [];
    kept.on("data", (c) => answers.push(String(c)));
    const answered = async (n: number) => {
      const deadline = Date.now() + 5000;
      while (answers.join("").split("HTTP/1.1 200").length - 1 < n) {
        assert.ok(Date.now() < deadline, `answer ${n} never came`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    kept.write("GET /a HTTP/1.1\r\nhost: x\r\n\r\n");
    await answered(1);
    await new Promise((r) => setTimeout(r, 500)); // longer than 300 ms idle
    kept.write("GET /b HTTP/1.1\r\nhost: x\r\n\r\n");
    await answered(2);
    kept.destroy();
  } finally {
    await listener.close();
  }
});
