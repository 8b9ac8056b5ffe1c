import assert from "node:assert/strict";
import { type ChunkSink, coalescer } from "../../lib/proxy/coalesce.ts";

/** A sink that records each write; `refuse` makes writes ask for a drain. */
type Writable<T> = { -readonly [K in keyof T]: T[K] };

function recordingSink(): Writable<ChunkSink> & {
  writes: Uint8Array[];
  refuse: boolean;
  nextWrite: () => Promise<Uint8Array>;
} {
  let waiting: ((c: Uint8Array) => void) | undefined;
  const sink = {
    writes: [] as Uint8Array[],
    refuse: false,
    destroyed: false,
    writableEnded: false,
    writableNeedDrain: false,
    write(chunk: Uint8Array): boolean {
      sink.writes.push(chunk);
      waiting?.(chunk);
      waiting = undefined;
      if (sink.refuse) sink.writableNeedDrain = true;
      return !sink.refuse;
    },
    nextWrite(): Promise<Uint8Array> {
      const { promise, resolve } = Promise.withResolvers<Uint8Array>();
      waiting = resolve;
      return promise;
    },
  };
  return sink;
}

function chunk(i: number, length = 1600): Uint8Array {
  return new Uint8Array(length).fill(i % 256);
}

function concat(parts: (Uint8Array | undefined)[]): number[] {
  return parts.flatMap((p) => p === undefined ? [] : [...p]);
}

Deno.test("coalescer: 650 chunks of 1.6 KB go out as 32 KiB writes, bytes in order", () => {
  const sink = recordingSink();
  const out = coalescer(sink, { holdLast: false });
  const sent = Array.from({ length: 650 }, (_, i) => chunk(i));
  for (const c of sent) assert.equal(out.push(c), true);
  const rest = out.finish();
  assert.ok(sink.writes.length <= 33, `${sink.writes.length} writes`);
  assert.ok(sink.writes.every((w) => w.length >= 32 * 1024));
  assert.deepEqual(concat([...sink.writes, rest]), concat(sent));
});

Deno.test("coalescer: holdLast keeps the latest chunk for finish()", () => {
  const sink = recordingSink();
  const out = coalescer(sink, { holdLast: true, flushBytes: 4000 });
  const sent = Array.from({ length: 10 }, (_, i) => chunk(i));
  for (const c of sent) out.push(c);
  const rest = out.finish();
  assert.ok(rest !== undefined && rest.length >= 1600);
  assert.deepEqual([...rest.subarray(rest.length - 1600)], [...sent[9]]);
  assert.deepEqual(concat([...sink.writes, rest]), concat(sent));
});

Deno.test("coalescer: a lone small chunk is written after the idle time, without finish()", async () => {
  const sink = recordingSink();
  const out = coalescer(sink, { holdLast: false, idleMs: 1 });
  const written = sink.nextWrite();
  out.push(chunk(3, 10));
  assert.deepEqual([...await written], [...chunk(3, 10)]);
  assert.equal(out.finish(), undefined);
});

Deno.test("coalescer: a sized answer's idle flush still keeps its last chunk back", async () => {
  const sink = recordingSink();
  const out = coalescer(sink, { holdLast: true, idleMs: 1 });
  const written = sink.nextWrite();
  out.push(chunk(1, 10));
  out.push(chunk(2, 10));
  assert.deepEqual([...await written], [...chunk(1, 10)]);
  assert.deepEqual([...out.finish()!], [...chunk(2, 10)]);
});

Deno.test("coalescer: a refused write reports back-pressure, also one the timer made", async () => {
  const sink = recordingSink();
  sink.refuse = true;
  const out = coalescer(sink, { holdLast: false, flushBytes: 100, idleMs: 1 });
  assert.equal(out.push(chunk(1, 200)), false);
  sink.writableNeedDrain = false; // the drain came
  const written = sink.nextWrite();
  assert.equal(out.push(chunk(2, 10)), true);
  await written; // the timer's write, refused
  assert.equal(out.push(chunk(3, 10)), false);
  out.finish();
});

Deno.test("coalescer: nothing is written to a destroyed sink; finish() stops the timer", () => {
  const sink = recordingSink();
  const out = coalescer(sink, { holdLast: false, flushBytes: 100 });
  sink.destroyed = true;
  out.push(chunk(1, 200));
  assert.equal(sink.writes.length, 0);
  out.push(chunk(2, 10)); // arms the timer
  out.finish(); // the test's timer sanitizer fails if it were left running
});

Deno.test("coalescer: chunks lying next to each other in one buffer go out as one view, others as a copy", () => {
  const arena = new Uint8Array(64 * 1024).map((_, i) => i % 253);
  const sink = recordingSink();
  const out = coalescer(sink, { holdLast: false, flushBytes: 4800 });
  for (let i = 0; i < 3; i++) {
    out.push(arena.subarray(i * 1600, (i + 1) * 1600));
  }
  assert.equal(sink.writes.length, 1);
  assert.equal(sink.writes[0].buffer, arena.buffer, "a view, not a copy");
  assert.deepEqual([...sink.writes[0]], [...arena.subarray(0, 4800)]);
  // a gap (the chunk at 6400 skips 4800-6400) or another buffer: copied
  out.push(arena.subarray(6400, 8000));
  out.push(chunk(9));
  out.push(arena.subarray(8000, 9600));
  assert.equal(sink.writes.length, 2);
  assert.notEqual(sink.writes[1].buffer, arena.buffer);
  assert.deepEqual(
    [...sink.writes[1]],
    concat([arena.subarray(6400, 8000), chunk(9), arena.subarray(8000, 9600)]),
  );
  out.finish();
});
