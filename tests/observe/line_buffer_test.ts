import assert from "node:assert/strict";
import { CHUNK_BYTES, LineBuffer } from "../../lib/observe/line_buffer.ts";

const decoder = new TextDecoder();

function text(chunks: Uint8Array[]): string {
  return chunks.map((c) => decoder.decode(c)).join("");
}

function randomLine(next: () => number): string {
  const kind = next();
  const length = kind < 0.02
    ? CHUNK_BYTES + Math.floor(next() * 1000) // longer than a chunk
    : Math.floor(next() * 3000);
  const alphabet = ["a", '"', "é", "水", "😀", "\\", " "];
  let unit = "";
  for (let i = 0; i < 61; i++) {
    unit += alphabet[Math.floor(next() * alphabet.length)];
  }
  // JSON.stringify never leaves a lone surrogate: neither does a cut here
  const s = unit.repeat(Math.ceil(length / unit.length)).slice(0, length)
    .replace(/[\ud800-\udbff]$/, "");
  return s;
}

function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
}

Deno.test("line buffer: what is taken is every line in order, each ending in a newline", () => {
  for (const seed of [1, 2, 3]) {
    const next = random(seed);
    const buffer = new LineBuffer();
    let expected = "";
    let taken = "";
    let lines = 0;
    for (let round = 0; round < 20; round++) {
      const n = Math.floor(next() * 300);
      for (let i = 0; i < n; i++) {
        const line = randomLine(next);
        buffer.push(line);
        expected += line + "\n";
      }
      assert.equal(
        buffer.bytes,
        new TextEncoder().encode(expected.slice(taken.length)).length,
      );
      const batch = buffer.take();
      assert.equal(batch.lines, n + (round > 0 ? 1 : 0));
      lines += batch.lines;
      taken += text(batch.chunks);
      // lines pushed while a batch is being written never land in it
      const copy = text(batch.chunks);
      buffer.push("written after the take");
      expected += "written after the take\n";
      assert.equal(text(batch.chunks), copy);
      buffer.recycle(batch.chunks);
    }
    taken += text(buffer.take().chunks);
    assert.equal(taken, expected);
    assert.ok(lines > 0);
    assert.equal(buffer.lines, 0);
    assert.equal(buffer.bytes, 0);
  }
});
