import assert from "node:assert/strict";
import { bodyChunks } from "../../lib/proxy/body_chunks.ts";

/** A byte stream that hands out the given pieces one pull at a time. */
function byteStream(pieces: Uint8Array<ArrayBuffer>[]): {
  stream: ReadableStream<Uint8Array>;
  cancelled: () => boolean;
} {
  let next = 0;
  let cancelled = false;
  const source: UnderlyingByteSource = {
    type: "bytes",
    pull(controller) {
      if (next === pieces.length) {
        // A pending BYOB read ends only once its request is answered.
        controller.close();
        controller.byobRequest?.respond(0);
      } else controller.enqueue(pieces[next++].slice());
    },
    cancel() {
      cancelled = true;
    },
  };
  return { stream: new ReadableStream(source), cancelled: () => cancelled };
}

function piece(length: number, seed: number): Uint8Array<ArrayBuffer> {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed) % 251);
}

Deno.test("bodyChunks: 700 small chunks and one over the read buffer arrive whole, in order, each safe to keep", async () => {
  const pieces = Array.from({ length: 700 }, (_, i) => piece(1600, i));
  pieces.push(piece(200_000, 7)); // larger than the 64 KiB read buffer
  const { stream } = byteStream(pieces);
  const got: Uint8Array[] = [];
  for await (const chunk of bodyChunks(stream)) got.push(chunk);
  // Kept chunks must not share the reused read buffer: if they did, the
  // later reads would have overwritten the earlier ones by now.
  const joined = new Uint8Array(got.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of got) {
    joined.set(c, at);
    at += c.length;
  }
  const want = new Uint8Array(pieces.reduce((n, c) => n + c.length, 0));
  at = 0;
  for (const p of pieces) {
    want.set(p, at);
    at += p.length;
  }
  assert.deepEqual(joined, want);
  // no chunk is a view of the read buffer, which every read transfers
  assert.ok(got.every((c) => c.byteLength > 0));
});

Deno.test("bodyChunks: leaving the loop early cancels the body", async () => {
  const { stream, cancelled } = byteStream(
    Array.from({ length: 10 }, (_, i) => piece(100, i)),
  );
  for await (const _chunk of bodyChunks(stream)) break;
  assert.equal(cancelled(), true);
});

Deno.test("bodyChunks: a failing body rejects the loop", async () => {
  let pulls = 0;
  const source: UnderlyingByteSource = {
    type: "bytes",
    pull(controller) {
      if (pulls++ === 0) controller.enqueue(piece(10, 1));
      else controller.error(new Error("upstream reset"));
    },
  };
  const stream = new ReadableStream(source);
  await assert.rejects(async () => {
    for await (const _chunk of bodyChunks(stream)) { /* drain */ }
  }, /upstream reset/);
});
