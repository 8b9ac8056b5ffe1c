/**
 * The V8 flag mca ships with (ADR 0023) is the same everywhere mca runs
 * (the release image's `deno compile`, `deno task start` and `compile`, the
 * test image's launcher, the benchmark), and this Deno honours it: a
 * garbage-heavy loop's new space stays near two 8 MiB semi-spaces (19-20 MiB
 * measured, V8 keeps some pages beyond them) where it grows to 57 MiB
 * without the flag.
 */

import assert from "node:assert/strict";
import { SHIPPED_V8_FLAGS } from "../bench/mca.ts";

const ROOT = new URL("../", import.meta.url);
const FLAG = "--max-semi-space-size=8";

function read(path: string): string {
  return Deno.readTextFileSync(new URL(path, ROOT));
}

Deno.test("every way mca is started carries the same V8 flag", () => {
  const tasks = JSON.parse(read("deno.json")).tasks;
  const places: Record<string, string> = {
    "Dockerfile deno compile": read("Dockerfile").split("\n")
      .find((l) => l.includes("&& deno compile")) ?? "",
    "deno task start": tasks.start,
    "deno task compile": tasks.compile,
    "test image launcher": read("deploy/image/mca_launcher.c"),
  };
  for (const [where, text] of Object.entries(places)) {
    assert.ok(
      text.includes(`--v8-flags=${FLAG}`),
      `${where} lacks --v8-flags=${FLAG}: ${text.slice(0, 200)}`,
    );
  }
  assert.deepEqual(SHIPPED_V8_FLAGS, [FLAG]);
});

/** Largest new-space size (MiB) a garbage-heavy loop reaches under `flags`. */
async function newSpaceMiB(flags: string[]): Promise<number> {
  const code = `import v8 from "node:v8";
let keep = [];
let max = 0;
for (let i = 0; i < 300000; i++) {
  keep.push({ i, s: "x".repeat(50) });
  if (keep.length > 20000) keep = [];
  if (i % 1000 === 0) {
    const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
    max = Math.max(max, ns.space_size);
  }
}
console.log(max / 1048576);`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(code));
  await w.close();
  const out = await child.output();
  assert.equal(out.code, 0);
  return Number(new TextDecoder().decode(out.stdout).trim());
}

Deno.test("the shipped flag caps V8's young generation", async () => {
  const start = JSON.parse(read("deno.json")).tasks.start as string;
  const flag = start.split(" ").find((a) => a.startsWith("--v8-flags="));
  assert.ok(flag, "deno task start names no --v8-flags");
  const capped = await newSpaceMiB([flag]);
  const uncapped = await newSpaceMiB([]);
  // two 8 MiB semi-spaces, plus the page V8 may hold beyond them while a
  // scavenge runs (18 MiB was seen on a loaded machine)
  assert.ok(capped <= 24, `new space reached ${capped} MiB with ${flag}`);
  assert.ok(
    uncapped >= capped * 1.5,
    `without the flag new space reached only ${uncapped} MiB (with it: ${capped}): the test proves nothing`,
  );
});
