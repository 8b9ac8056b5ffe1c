/**
 * Reading a `fetch` answer's body without a fresh 64 KiB buffer per chunk.
 *
 * A `fetch` body's default reader allocates a 64 KiB buffer for every read,
 * however small the chunk it gets. kube-apiserver sends a 1 MB LIST as about
 * 650 chunks of ~1.6 KB, so the default reader allocates ~40 MB per 1 MB
 * relayed, and garbage collection made reading cost about 20 ms of CPU per
 * 1 MB LIST (5x what `kubectl proxy` spends on the whole call). A BYOB reader
 * given one buffer again and again, with each chunk copied out at its own
 * size, reads the same answer for about 4 ms (ADR 0007).
 *
 * The copies go into a 64 KiB arena, one after the other, not into an
 * `ArrayBuffer` each: allocating a buffer per 1.6 KB chunk was still 14 % of
 * a LIST's CPU (a profile at 49c6005), and chunks that sit next to each
 * other in an arena are written to the app as one view, without joining
 * (`coalesce.ts`). An arena is never written again once it is full; it is
 * freed when the last chunk in it is.
 *
 * @module
 */

/** Size of the one read buffer: a chunk larger than it arrives in pieces. */
const READ_BUFFER_BYTES = 64 * 1024;
/** Size of an arena the chunks are copied into. */
const ARENA_BYTES = 64 * 1024;

/**
 * Yields the body's chunks, each a `Uint8Array` exactly as large as the data
 * read, safe to keep or to hand to a socket write (nothing writes over it
 * later); consecutive chunks are often adjacent views of one arena.
 *
 * @example
 * ```ts
 * const answer = await fetch("https://127.0.0.1:6443/api");
 * for await (const chunk of bodyChunks(answer.body!)) sink.push(chunk);
 * ```
 */
export async function* bodyChunks(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const reader = body.getReader({ mode: "byob" });
  let buffer = new ArrayBuffer(READ_BUFFER_BYTES);
  let arena = new Uint8Array(ARENA_BYTES);
  let used = 0;
  try {
    while (true) {
      const { done, value } = await reader.read(new Uint8Array(buffer));
      if (done) return;
      // The read took the buffer over (transferred); its view gives it back.
      buffer = value.buffer as ArrayBuffer;
      if (value.length > ARENA_BYTES - used) {
        if (value.length > ARENA_BYTES / 4) {
          yield value.slice(); // a big chunk: a copy of its own
          continue;
        }
        arena = new Uint8Array(ARENA_BYTES);
        used = 0;
      }
      arena.set(value, used);
      const chunk = arena.subarray(used, used + value.length);
      used += value.length;
      yield chunk;
    }
  } finally {
    // Stopping early (an app that went away) must not leave the upstream
    // answer half-read on its connection.
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/**
 * Size of the read buffer of a stream (a watch, a followed log): such a
 * stream is open for hours, one per app watch, and its events are a few KB
 * at most, so a LIST's 64 KiB buffer and arena would be most of the
 * stream's memory (1,000 watches: 96 KiB against 52 KiB each, ADR 0007).
 */
export const STREAM_READ_BYTES = 8 * 1024;

/**
 * Yields a long-lived stream's chunks, each copied out at its own size (a
 * buffer of its own, safe to keep) from one small read buffer.
 */
export async function* streamChunks(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const reader = body.getReader({ mode: "byob" });
  let buffer = new ArrayBuffer(STREAM_READ_BYTES);
  try {
    while (true) {
      const { done, value } = await reader.read(new Uint8Array(buffer));
      if (done) return;
      buffer = value.buffer as ArrayBuffer;
      yield value.slice();
    }
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
