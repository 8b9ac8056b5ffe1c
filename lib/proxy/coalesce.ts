/**
 * Joining an answer's small chunks into fewer writes to the app.
 *
 * kube-apiserver sends a 1 MB LIST as about 650 chunks of ~1.6 KB. Each write
 * to the app's TLS socket costs a system call and a TLS record, and one write
 * per chunk made those writes about half of MCA's CPU for a LIST (ADR 0007).
 * Chunks are therefore held until 32 KiB are waiting, or until 20 ms pass with
 * bytes waiting (so an answer that trickles still reaches the app), then
 * written as one. The wait was 2 ms until 64 concurrent LISTs showed that on
 * a busy event loop most flushes came from the timer, a few KB each: writes
 * were 35 % of MCA's CPU and a LIST cost 17.6 ms; with 20 ms, 18 % and 13.5
 * ms, and 26 % more LISTs per second (`bench/profile.ts --workload LIST -c
 * 64`, 2026-12-04). An answer's end is written at once either way. Only the `fetch` path uses this: watches and followed
 * logs, whose every event must go out at once, never come here.
 *
 * A sized answer (`Content-Length`) must end with data, not a bare `end()`
 * (Deno's `node:http` server never finishes it otherwise; ADR 0007), so with
 * `holdLast` the most recent chunk always stays back for `finish()`.
 *
 * @module
 */

/** Where coalesced bytes go: a `ServerResponse` in the proxy. */
export interface ChunkSink {
  write(chunk: Uint8Array): boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  /** True from a refused write until the next `drain`. */
  readonly writableNeedDrain: boolean;
}

/** Options of {@linkcode coalescer}. */
export interface CoalesceOptions {
  /** Keep the latest chunk back for `finish()` (sized answers). */
  holdLast: boolean;
  /** Write once this many bytes wait; default 32 KiB. */
  flushBytes?: number;
  /** Write what waits after this long; default 20 ms. */
  idleMs?: number;
}

/** A chunk joiner in front of one sink. */
export interface Coalescer {
  /** Takes a chunk; false when the sink asks the caller to wait for `drain`. */
  push(chunk: Uint8Array): boolean;
  /** Stops the timer and returns what is left, for the sink's `end()`. */
  finish(): Uint8Array | undefined;
}

/**
 * @example
 * ```ts
 * const out = coalescer(res, { holdLast: false });
 * for await (const chunk of chunks) if (!out.push(chunk)) await drained(res);
 * res.end(out.finish());
 * ```
 */
export function coalescer(
  sink: ChunkSink,
  options: CoalesceOptions,
): Coalescer {
  const flushBytes = options.flushBytes ?? 32 * 1024;
  const idleMs = options.idleMs ?? 20;
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  function stopTimer(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  }
  /** Writes all that waits except, with `holdLast`, the latest chunk. */
  function flush(): void {
    stopTimer();
    const keep = options.holdLast ? held.pop() : undefined;
    if (held.length > 0 && !sink.destroyed && !sink.writableEnded) {
      const bytes = heldBytes - (keep?.length ?? 0);
      sink.write(held.length === 1 ? held[0] : join(held, bytes));
    }
    held = keep === undefined ? [] : [keep];
    heldBytes = keep?.length ?? 0;
  }
  return {
    push(chunk) {
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes >= flushBytes) flush();
      else if (timer === undefined) timer = setTimeout(flush, idleMs);
      // Asked of the sink, not of the last write: a write made by the timer
      // may have been refused since, and its `drain` may have come already.
      return !sink.writableNeedDrain;
    },
    finish() {
      stopTimer();
      const rest = held.length <= 1 ? held[0] : join(held, heldBytes);
      held = [];
      heldBytes = 0;
      return rest;
    },
  };
}

/**
 * The chunks as one array: a view over them when they lie next to each
 * other in one buffer (as `bodyChunks` leaves them), else a copy.
 */
function join(chunks: Uint8Array[], bytes: number): Uint8Array {
  const first = chunks[0];
  let end = first.byteOffset + first.length;
  let adjacent = true;
  for (let i = 1; i < chunks.length && adjacent; i++) {
    const c = chunks[i];
    adjacent = c.buffer === first.buffer && c.byteOffset === end;
    end += c.length;
  }
  if (adjacent) return new Uint8Array(first.buffer, first.byteOffset, bytes);
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
