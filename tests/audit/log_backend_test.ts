import assert from "node:assert/strict";
import { backupName, openLogBackend } from "../../lib/audit/log_backend.ts";

/** A new directory under tmp/, removed when the test's `using` ends. */
async function freshDir(
  name: string,
): Promise<AsyncDisposable & { path: string }> {
  const path =
    new URL(`../../tmp/audit_${name}_${crypto.randomUUID()}/`, import.meta.url)
      .pathname;
  await Deno.mkdir(path, { recursive: true });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

const event = (n: number) =>
  JSON.stringify({ kind: "Event", n, pad: "x".repeat(80) });

Deno.test("audit log: lines are appended, one event per line", async () => {
  await using tmp = await freshDir("append");
  const dir = tmp.path;
  const backend = openLogBackend(`${dir}audit.log`, { log: () => {} });
  for (let i = 0; i < 5; i++) backend.emit(event(i));
  await backend.close();
  const lines = (await Deno.readTextFile(`${dir}audit.log`)).trimEnd().split(
    "\n",
  );
  assert.deepEqual(lines.map((l) => JSON.parse(l).n), [0, 1, 2, 3, 4]);
  assert.deepEqual(backend.counters, { written: 5, dropped: 0, errors: 0 });
});

Deno.test("audit log: rotates by size and keeps maxBackups old files", async () => {
  await using tmp = await freshDir("rotate");
  const dir = tmp.path;
  const backend = openLogBackend(`${dir}audit.log`, {
    log: () => {},
    maxSizeBytes: 1000,
    maxBackups: 2,
  });
  for (let i = 0; i < 60; i++) {
    backend.emit(event(i));
    await backend.flush(); // one write per event, so rotation happens often
  }
  await backend.close();
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.equal(names.length, 3, names.join(" "));
  assert.ok(names.includes("audit.log"));
  for (const n of names.filter((n) => n !== "audit.log")) {
    assert.match(n, /^audit-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log$/);
  }
  let total = 0;
  for (const n of names) {
    const text = await Deno.readTextFile(dir + n);
    assert.ok(text.length <= 1000, `${n} is ${text.length} bytes`);
    total += text.trimEnd().split("\n").length;
  }
  const current = (await Deno.readTextFile(`${dir}audit.log`)).trimEnd().split(
    "\n",
  );
  assert.equal(JSON.parse(current.at(-1)!).n, 59);
  assert.ok(total < 60, "the oldest files were removed");
});

Deno.test("audit log: backup names follow lumberjack's pattern", () => {
  assert.equal(
    backupName("/var/log/mca/audit.log", new Date("2026-01-02T03:04:05.678Z")),
    "/var/log/mca/audit-2026-01-02T03-04-05.678.log",
  );
  assert.equal(
    backupName("audit", new Date(0)),
    "audit-1970-01-01T00-00-00.000",
  );
});

Deno.test("audit log: an unwritable path drops and counts events, reports once, never throws", async () => {
  await using tmp = await freshDir("unwritable");
  const dir = tmp.path;
  const logged: string[] = [];
  // A directory where the file should be: open() fails for every batch.
  await Deno.mkdir(`${dir}audit.log`);
  const backend = openLogBackend(`${dir}audit.log`, {
    log: (l) => void logged.push(l),
  });
  backend.emit(event(1));
  await backend.flush();
  backend.emit(event(2));
  backend.emit(event(3));
  await backend.close();
  assert.deepEqual(backend.counters, { written: 0, dropped: 3, errors: 2 });
  assert.equal(logged.length, 1);
  const line = JSON.parse(logged[0]);
  assert.equal(line.level, "error");
  assert.equal(line.msg, "audit log not writable; events dropped");
  assert.equal(line.path, `${dir}audit.log`);
});

Deno.test("audit log: recovers when the path becomes writable", async () => {
  await using tmp = await freshDir("recover");
  const dir = tmp.path;
  const logged: string[] = [];
  await Deno.mkdir(`${dir}audit.log`);
  const backend = openLogBackend(`${dir}audit.log`, {
    log: (l) => void logged.push(l),
  });
  backend.emit(event(1));
  await backend.flush();
  await Deno.remove(`${dir}audit.log`);
  backend.emit(event(2));
  await backend.close();
  assert.deepEqual(backend.counters, { written: 1, dropped: 1, errors: 1 });
  assert.deepEqual(logged.map((l) => JSON.parse(l).msg), [
    "audit log not writable; events dropped",
    "audit log writable again",
  ]);
  assert.equal(JSON.parse(await Deno.readTextFile(`${dir}audit.log`)).n, 2);
});

Deno.test("audit log: the pending buffer is bounded", async () => {
  await using tmp = await freshDir("bounded");
  const dir = tmp.path;
  const backend = openLogBackend(`${dir}audit.log`, {
    log: () => {},
    maxPendingBytes: 500,
  });
  for (let i = 0; i < 20; i++) backend.emit(event(i));
  await backend.close();
  assert.ok(backend.counters.dropped > 0);
  assert.equal(backend.counters.written + backend.counters.dropped, 20);
});

Deno.test("audit log: a FIFO given as the log is written to, never rotated away", async () => {
  await using tmp = await freshDir("fifo");
  const path = `${tmp.path}audit.pipe`;
  const made = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.equal(made.code, 0);
  // the reader drains the pipe, as a log shipper would
  const reading = (async () => {
    const f = await Deno.open(path, { read: true });
    return new Response(f.readable).text();
  })();
  const backend = openLogBackend(path, { log: () => {}, maxSizeBytes: 1000 });
  for (let i = 0; i < 60; i++) {
    backend.emit(event(i));
    await backend.flush(); // over maxSize many times
  }
  await backend.close();
  const text = await reading;
  assert.equal(text.trimEnd().split("\n").length, 60);
  assert.equal(backend.counters.written, 60);
  const names = [...Deno.readDirSync(tmp.path)].map((e) => e.name);
  assert.deepEqual(names, ["audit.pipe"], "no backup was made");
  assert.ok(Deno.statSync(path).isFifo, "the FIFO is still a FIFO");
});
