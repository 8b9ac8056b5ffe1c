import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import {
  failureToStatus,
  respondFailureOnSocket,
} from "../../lib/proxy/failure.ts";

Deno.test("failure: unreachable is a 503 ServiceUnavailable naming the upstream", () => {
  const status = failureToStatus({
    kind: "unreachable",
    origin: "https://10.0.0.1:6443",
    message: "connect ECONNREFUSED",
  });
  assert.equal(status.code, 503);
  assert.equal(status.reason, "ServiceUnavailable");
  assert.equal(
    status.message,
    "mca: the API server https://10.0.0.1:6443 is unreachable: connect ECONNREFUSED",
  );
});

Deno.test("failure: a head that never came is a 504 Timeout saying how long MCA waited", () => {
  const status = failureToStatus({
    kind: "timeout",
    origin: "https://h",
    message: "no answer within 300 ms",
    afterMs: 300,
  });
  assert.equal(status.code, 504);
  assert.equal(status.reason, "Timeout");
  assert.match(status.message, /sent no answer within 300 ms$/);
});

Deno.test("failure: on a raw socket the Status is a whole HTTP/1.1 answer that closes", async () => {
  const socket = new PassThrough();
  const chunks: Uint8Array[] = [];
  socket.on("data", (c: Uint8Array) => chunks.push(c));
  const ended = new Promise((resolve) => socket.once("end", resolve));
  const answered = respondFailureOnSocket(socket, {
    kind: "unreachable",
    origin: "https://h",
    message: "boom",
  });
  await ended;
  const text = new TextDecoder().decode(
    new Uint8Array(chunks.flatMap((c) => [...c])),
  );
  const [head, body] = text.split("\r\n\r\n");
  assert.match(head, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
  assert.match(head, /\r\nretry-after: 1/);
  assert.match(head, /\r\nconnection: close$/);
  assert.equal(
    Number(/content-length: (\d+)/.exec(head)?.[1]),
    new TextEncoder().encode(body).length,
  );
  assert.equal(JSON.parse(body).code, 503);
  assert.equal(answered.status, 503);
  assert.equal(answered.bytesOut, new TextEncoder().encode(body).length);
});

Deno.test("failure: a socket that cannot be written is dropped, not answered", () => {
  const socket = new PassThrough();
  socket.end();
  const answered = respondFailureOnSocket(socket, {
    kind: "unreachable",
    origin: "https://h",
    message: "boom",
  });
  assert.equal(answered.status, 0);
  assert.ok(socket.destroyed);
});
