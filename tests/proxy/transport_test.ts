import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import {
  isDroppedRequestHeader,
  upstreamHeaders,
} from "../../lib/proxy/headers.ts";

function fakeRequest(raw: string[]): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    headers[raw[i].toLowerCase()] = raw[i + 1];
  }
  return { rawHeaders: raw, headers } as unknown as IncomingMessage;
}

Deno.test("transport: credentials and hop-by-hop headers are dropped", () => {
  const tokens = new Set<string>(["x-per-hop"]);
  for (
    const name of [
      "Authorization",
      "Cookie",
      "Impersonate-User",
      "Impersonate-Group",
      "Impersonate-Uid",
      "Impersonate-Extra-Scopes",
      "X-Remote-User",
      "X-Remote-Group",
      "X-Remote-Extra-Foo",
      "Proxy-Authorization",
      "Connection",
      "Keep-Alive",
      "TE",
      "Transfer-Encoding",
      "Upgrade",
      "Host",
      "X-Per-Hop",
    ]
  ) {
    assert.ok(isDroppedRequestHeader(name, tokens, false), name);
  }
  for (
    const name of [
      "Accept",
      "Content-Type",
      "User-Agent",
      "Content-Length",
      "Accept-Encoding",
    ]
  ) {
    assert.ok(!isDroppedRequestHeader(name, tokens, false), name);
  }
  assert.ok(!isDroppedRequestHeader("Connection", tokens, true));
  assert.ok(!isDroppedRequestHeader("Upgrade", tokens, true));
  assert.ok(isDroppedRequestHeader("Authorization", tokens, true));
});

Deno.test("transport: upstream headers carry the real token and keep repeats", () => {
  const headers = upstreamHeaders(
    fakeRequest([
      "Authorization",
      "bearer mca-placeholder-token",
      "Accept",
      "application/json",
      "X-Stream-Protocol-Version",
      "v4.channel.k8s.io",
      "X-Stream-Protocol-Version",
      "channel.k8s.io",
      "Connection",
      "keep-alive, X-Secret-Hop",
      "X-Secret-Hop",
      "1",
    ]),
    "Bearer real",
  );
  assert.deepEqual(headers, {
    accept: "application/json",
    "x-stream-protocol-version": ["v4.channel.k8s.io", "channel.k8s.io"],
    authorization: "Bearer real",
  });
});

Deno.test("transport: a bearer token in a WebSocket subprotocol is removed", () => {
  const only = upstreamHeaders(
    fakeRequest([
      "Sec-WebSocket-Protocol",
      "base64url.bearer.authorization.k8s.io.dG9rZW4",
    ]),
    "Bearer real",
    true,
  );
  assert.equal(only["sec-websocket-protocol"], undefined);
  const mixed = upstreamHeaders(
    fakeRequest([
      "Connection",
      "Upgrade",
      "Upgrade",
      "websocket",
      "Sec-WebSocket-Protocol",
      "v5.channel.k8s.io,base64url.bearer.authorization.k8s.io.dG9rZW4, v4.channel.k8s.io",
    ]),
    undefined,
    true,
  );
  assert.equal(
    mixed["sec-websocket-protocol"],
    "v5.channel.k8s.io, v4.channel.k8s.io",
  );
  assert.equal(mixed.connection, "Upgrade");
  assert.equal(mixed.upgrade, "websocket");
  assert.equal(mixed.authorization, undefined);
});
