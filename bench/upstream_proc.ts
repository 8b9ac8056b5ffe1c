/**
 * The fake upstream (tests/support/fake_upstream.ts) in a process of its
 * own, so that its CPU and memory are neither the orchestrator's nor the
 * proxy's. Controlled by JSON lines on stdin, answers JSON lines on stdout.
 *
 *   deno run -A bench/upstream_proc.ts <token>
 *   → {"msg":"ready","port":N,"caPem":"..."}
 *   ← {"id":1,"cmd":"waitWatches","n":1000,"timeoutMs":60000}
 *   ← {"id":2,"cmd":"push","rate":10,"durationMs":10000,"padBytes":600}
 *   ← {"id":3,"cmd":"closeWatches"} | {"id":4,"cmd":"watches"}
 *   ← {"id":5,"cmd":"acceptTokens","tokens":["old","new"]}
 *   ← {"id":6,"cmd":"auth"}  → {"id":6,"ok":true,"byToken":{"<bearer>":N}}
 *     (requests received per Authorization header since start)
 *   ← {"id":7,"cmd":"stopPush"}  (ends a running push early)
 *   → {"id":N,"ok":true,...} or {"id":N,"ok":false,"error":"..."}
 *
 * Watch events carry `sentAt`: wall-clock milliseconds with a fraction
 * (`performance.timeOrigin + performance.now()`), taken just before the
 * event is written to the open watches.
 *
 * @module
 */

import { startFakeUpstream } from "../tests/support/fake_upstream.ts";

const token = Deno.args[0];
if (!token) throw new Error("usage: upstream_proc.ts <token>");

const upstream = await startFakeUpstream({ token });
/** Requests per Authorization header value (the soak's rotation check). */
const byToken: Record<string, number> = {};
/**
 * The fixture records every request (headers included); under load that
 * list would grow without bound and slow the upstream down. Tally the
 * headers and empty it.
 */
function drainRequests(): void {
  for (const r of upstream.requests) {
    const header = String(r.headers.authorization ?? "(none)");
    const bearer = header.replace(/^Bearer /, "");
    byToken[bearer] = (byToken[bearer] ?? 0) + 1;
  }
  upstream.requests.length = 0;
}
setInterval(drainRequests, 500);
let stopPushRequested = false;

const encoder = new TextEncoder();
function reply(value: object): void {
  const bytes = encoder.encode(JSON.stringify(value) + "\n");
  let at = 0;
  while (at < bytes.length) at += Deno.stdout.writeSync(bytes.subarray(at));
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Pushes `rate` events/s for `durationMs` (or until `stopPush`); resolves
 * with the count sent and `watchWrites`, the events written summed over the
 * watches open at each push (sent × watches when none closed meanwhile).
 */
function push(rate: number, durationMs: number, padBytes: number) {
  const pad = "p".repeat(Math.max(0, padBytes));
  const interval = 1000 / rate;
  const total = Math.max(1, Math.round(rate * durationMs / 1000));
  const start = performance.now();
  let sent = 0;
  let lateMs = 0;
  let watchWrites = 0;
  let minWatches = Infinity;
  const { promise, resolve } = Promise.withResolvers<{
    sent: number;
    watches: number;
    maxLateMs: number;
    watchWrites: number;
    minWatches: number;
  }>();
  const watches = upstream.openWatches();
  stopPushRequested = false;
  const done = () =>
    resolve({
      sent,
      watches,
      maxLateMs: Math.round(lateMs * 10) / 10,
      watchWrites,
      minWatches: sent === 0 ? watches : minWatches,
    });
  function tick(): void {
    if (stopPushRequested) return done();
    const due = start + sent * interval;
    lateMs = Math.max(lateMs, performance.now() - due);
    const open = upstream.openWatches();
    watchWrites += open;
    minWatches = Math.min(minWatches, open);
    upstream.pushWatchEvent({
      type: "MODIFIED",
      object: {
        kind: "ConfigMap",
        apiVersion: "v1",
        metadata: {
          name: "bench-watched",
          namespace: "default",
          resourceVersion: String(1000 + sent),
          uid: "00000000-0000-4000-8000-000000000001",
        },
        data: { pad },
      },
      sentAt: now(),
    });
    sent++;
    if (sent >= total) return done();
    const next = start + sent * interval - performance.now();
    setTimeout(tick, Math.max(0, next));
  }
  tick();
  return promise;
}

async function handle(line: string): Promise<void> {
  let cmd: Record<string, unknown>;
  try {
    cmd = JSON.parse(line);
  } catch {
    reply({ ok: false, error: `bad command ${line}` });
    return;
  }
  const id = cmd.id;
  try {
    switch (cmd.cmd) {
      case "watches":
        reply({ id, ok: true, watches: upstream.openWatches() });
        break;
      case "waitWatches":
        await upstream.waitForWatches(
          Number(cmd.n),
          Number(cmd.timeoutMs ?? 60_000),
        );
        reply({ id, ok: true, watches: upstream.openWatches() });
        break;
      case "push":
        reply({
          id,
          ok: true,
          ...await push(
            Number(cmd.rate),
            Number(cmd.durationMs),
            Number(cmd.padBytes ?? 0),
          ),
        });
        break;
      case "stopPush":
        stopPushRequested = true;
        reply({ id, ok: true });
        break;
      case "acceptTokens":
        upstream.acceptTokens((cmd.tokens as string[]).map(String));
        reply({ id, ok: true });
        break;
      case "auth":
        drainRequests();
        reply({ id, ok: true, byToken });
        break;
      case "closeWatches":
        upstream.closeWatches();
        reply({ id, ok: true });
        break;
      case "exit":
        reply({ id, ok: true });
        await upstream.close();
        Deno.exit(0);
        break;
      default:
        reply({ id, ok: false, error: `unknown command ${cmd.cmd}` });
    }
  } catch (error) {
    reply({ id, ok: false, error: (error as Error).message });
  }
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(signal, () => Deno.exit(0));
}

reply({ msg: "ready", port: upstream.port, caPem: upstream.caPem });

const decoder = new TextDecoderStream();
let buffered = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(decoder)) {
  buffered += chunk;
  let nl: number;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const line = buffered.slice(0, nl).trim();
    buffered = buffered.slice(nl + 1);
    if (line !== "") handle(line);
  }
}
await upstream.close();
Deno.exit(0);
