import assert from "node:assert/strict";
import { writeFileAtomic } from "../../lib/sidecar/files.ts";

const ROOT = new URL("../../tmp/", import.meta.url).pathname;

Deno.test("writeFileAtomic replaces the file whole, with the mode asked", async () => {
  const dir = await Deno.makeTempDir({ dir: ROOT, prefix: "files-" });
  try {
    const path = `${dir}/token`;
    await writeFileAtomic(path, "one");
    await writeFileAtomic(path, "two", { mode: 0o600 });
    assert.equal(await Deno.readTextFile(path), "two");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    await writeFileAtomic(path, new Uint8Array([65, 66]));
    assert.equal(await Deno.readTextFile(path), "AB");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o644);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(names, ["token"], "no temporary file is left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic says what was wrong when the directory is missing", async () => {
  await assert.rejects(
    () => writeFileAtomic(`${ROOT}no-such-dir-${Date.now()}/x`, "a"),
    /cannot write .*no-such-dir.*directory exists/,
  );
});

Deno.test("a concurrent reader never sees a half-written file", async () => {
  const dir = await Deno.makeTempDir({ dir: ROOT, prefix: "files-" });
  try {
    const path = `${dir}/ca.crt`;
    const a = "A".repeat(1 << 20);
    const b = "B".repeat(1 << 20);
    await writeFileAtomic(path, a);
    let done = false;
    const reader = (async () => {
      let reads = 0;
      while (!done) {
        const text = await Deno.readTextFile(path);
        assert.ok(
          text === a || text === b,
          `torn read of ${text.length} bytes`,
        );
        reads++;
      }
      return reads;
    })();
    for (let i = 0; i < 20; i++) await writeFileAtomic(path, i % 2 ? a : b);
    done = true;
    assert.ok(await reader > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
