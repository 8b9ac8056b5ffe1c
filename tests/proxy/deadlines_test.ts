import assert from "node:assert/strict";
import { deadline, tickOf } from "../../lib/proxy/deadlines.ts";

/**
 * Runs `f` with a referenced timer alive: a deadline alone is unref'd, as
 * in mca, where open sockets keep the process running.
 */
async function alive<T>(f: () => Promise<T>): Promise<T> {
  const keep = setInterval(() => {}, 1000);
  try {
    return await f();
  } finally {
    clearInterval(keep);
  }
}

function expiry(ms: number): { promise: Promise<number>; cancel(): void } {
  const set = performance.now();
  const { promise, resolve } = Promise.withResolvers<number>();
  const d = deadline(ms, () => resolve(performance.now() - set));
  return { promise, cancel: () => d.cancel() };
}

Deno.test("deadlines: each fires once, not before its time and at most a tick after", () =>
  alive(async () => {
    for (const ms of [30, 120]) {
      const late = tickOf(ms) + 40; // a tick, plus a loaded machine's slack
      const all = await Promise.all(
        [expiry(ms), expiry(ms), expiry(ms)].map((e) => e.promise),
      );
      for (const elapsed of all) {
        assert.ok(elapsed >= ms, `${elapsed} ms ≥ ${ms} ms`);
        assert.ok(
          elapsed <= ms + late + 200,
          `${elapsed} ms ≤ ${ms} + ${late} + 200`,
        );
      }
    }
  }));

Deno.test("deadlines: a cancelled one never fires, and the others of its duration still do", () =>
  alive(async () => {
    let fired = 0;
    const cancelled = deadline(50, () => fired++);
    const kept = expiry(50); // set after it: it cannot expire first
    cancelled.cancel();
    cancelled.cancel(); // twice is harmless
    await kept.promise;
    assert.equal(fired, 0);
  }));

Deno.test("deadlines: a callback that throws does not stop the rest", () =>
  alive(async () => {
    deadline(40, () => {
      throw new Error("boom");
    });
    const after = expiry(40);
    assert.ok((await after.promise) >= 40);
  }));

Deno.test("deadlines: a pending one does not keep the process alive", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { deadline } from "${new URL(
        "../../lib/proxy/deadlines.ts",
        import.meta.url,
      )}";
       deadline(600_000, () => Deno.exit(3));
       console.log("armed");`,
    ],
    stdout: "piped",
  });
  const out = await child.output();
  assert.equal(out.code, 0);
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "armed");
});

Deno.test("deadlines: the tick is a tenth of the duration, between 5 ms and 1 s", () => {
  assert.equal(tickOf(10), 5);
  assert.equal(tickOf(500), 50);
  assert.equal(tickOf(70_000), 1000);
});
