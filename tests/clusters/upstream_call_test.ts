import assert from "node:assert/strict";
import { Readable } from "node:stream";
import type { IncomingMessage } from "node:http";
import {
  readBody,
  readJson,
  readLines,
} from "../../lib/clusters/upstream_call.ts";

function fakeResponse(chunks: string[]): IncomingMessage {
  return Readable.from(
    chunks.map((c) => new TextEncoder().encode(c)),
  ) as unknown as IncomingMessage;
}

Deno.test("upstream call: watch lines split across chunks are joined", async () => {
  const lines: string[] = [];
  for await (
    const line of readLines(
      fakeResponse([
        '{"type":"ADD',
        'ED"}\n{"type":',
        '"MODIFIED"}\n\n',
        '{"type":"DELETED"}',
      ]),
    )
  ) {
    lines.push(line);
  }
  assert.deepEqual(lines.map((l) => JSON.parse(l).type), [
    "ADDED",
    "MODIFIED",
    "DELETED",
  ]);
});

Deno.test("upstream call: whole bodies, JSON or not, and a size limit", async () => {
  assert.deepEqual(await readJson(fakeResponse(['{"a":', "1}"])), { a: 1 });
  assert.equal(await readJson(fakeResponse(["not json"])), undefined);
  assert.equal((await readBody(fakeResponse(["abc", "def"]))).length, 6);
  await assert.rejects(
    () => readBody(fakeResponse(["abc", "def"]), 4),
    /larger than 4 bytes/,
  );
});
