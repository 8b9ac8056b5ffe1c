/**
 * Many concurrent watch clients in one process of their own. Each watch is
 * its own TLS connection (as each Pod's informer would hold one); every
 * event line carries `sentAt` (see bench/upstream_proc.ts) and the delay to
 * its arrival here is recorded.
 *
 *   deno run -A bench/watch_clients.ts '<json options>'
 *   → {"msg":"ready"}
 *   ← {"id":1,"cmd":"open"}   → {"id":1,"ok":true,"open":N,"ms":T}
 *   ← {"id":2,"cmd":"count"}  → {"id":2,"ok":true,"events":N}
 *   ← {"id":3,"cmd":"report"} → {"id":3,"ok":true,"events":N,"p50Ms":...}
 *     (percentiles over every event since the last report)
 *   ← {"id":4,"cmd":"tally","sent":N}  (with `track`) → {"id":4,"ok":true,
 *     "lost":N,"duplicates":N,"reopened":N,...}
 *   ← {"id":5,"cmd":"close"}
 *
 * With `track` every event line is parsed (JSON) and its sequence number
 * (`metadata.resourceVersion` − 1000, as bench/upstream_proc.ts numbers its
 * pushes) is marked for the watch that received it; a watch that ends is
 * re-opened at once (as an informer would) and counted, and the events sent
 * while it was down show up as lost: nothing re-lists.
 *
 * @module
 */

import { request } from "node:https";
import type { ClientRequest, IncomingMessage } from "node:http";
import { percentile } from "./stats.ts";
import { mark, newTracked, tallyWatches, type Tracked } from "./watch_track.ts";

interface Options {
  port: number;
  path: string;
  caPem: string;
  token: string;
  count: number;
  /** Connections opened at once while ramping up. */
  parallel: number;
  /** Count events per watch by sequence number, re-open ended watches. */
  track?: boolean;
}

const options: Options = JSON.parse(Deno.args[0]);
const encoder = new TextEncoder();
function reply(value: object): void {
  const bytes = encoder.encode(JSON.stringify(value) + "\n");
  let at = 0;
  while (at < bytes.length) at += Deno.stdout.writeSync(bytes.subarray(at));
}

const requests = new Set<ClientRequest>();
let latencies: number[] = [];
let malformed = 0;
let ended = 0;
let reopened = 0;
let reopenFailed = 0;
let closing = false;
const tracked: Tracked[] = [];

function now(): number {
  return performance.timeOrigin + performance.now();
}

function onEventLine(line: string): void {
  // Cheaper than JSON.parse of the whole event: sentAt is the last field.
  const at = line.lastIndexOf('"sentAt":');
  if (at < 0) {
    malformed++;
    return;
  }
  const sentAt = Number(line.slice(at + 9, line.length - 1));
  if (!Number.isFinite(sentAt)) {
    malformed++;
    return;
  }
  latencies.push(now() - sentAt);
}

/** A tracked event line: parsed whole, its sequence number marked. */
function onTrackedLine(watch: Tracked, line: string): void {
  let seq = NaN;
  try {
    const event = JSON.parse(line);
    seq = Number(event.object?.metadata?.resourceVersion) - 1000;
    latencies.push(now() - Number(event.sentAt));
  } catch {
    // counted below
  }
  if (!Number.isInteger(seq) || seq < 0) {
    malformed++;
    return;
  }
  mark(watch, seq);
}

/** Re-opens watch `index` after it ended (track mode), bounded retries. */
async function reopen(index: number): Promise<void> {
  for (let attempt = 0; attempt < 20 && !closing; attempt++) {
    try {
      await openOne(index);
      reopened++;
      return;
    } catch {
      reopenFailed++;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

function openOne(index: number): Promise<void> {
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const req = request({
    host: "127.0.0.1",
    port: options.port,
    path: options.path,
    method: "GET",
    ca: options.caPem,
    agent: false,
    headers: { authorization: `Bearer ${options.token}` },
  }, (res: IncomingMessage) => {
    if (res.statusCode !== 200) {
      reject(new Error(`watch answered ${res.statusCode}`));
      res.resume();
      return;
    }
    let buffered = "";
    const watch = options.track ? tracked[index] : undefined;
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        if (watch) onTrackedLine(watch, line);
        else onEventLine(line);
        buffered = buffered.slice(nl + 1);
      }
    });
    let over = false;
    const onOver = () => {
      if (over) return;
      over = true;
      ended++;
      requests.delete(req);
      if (watch && !closing) reopen(index);
    };
    res.on("end", onOver);
    res.on("error", onOver);
    res.on("close", onOver);
    resolve();
  });
  req.setTimeout(30_000, () => req.destroy(new Error("watch open timed out")));
  req.on("error", (e) => reject(e));
  req.end();
  requests.add(req);
  return promise.finally(() => req.setTimeout(0));
}

async function openAll(): Promise<
  { open: number; failed: number; ms: number; firstError?: string }
> {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  async function worker() {
    while (next < options.count) {
      const index = next++;
      tracked[index] = newTracked();
      try {
        await openOne(index);
      } catch (e) {
        failed++;
        firstError ??= (e as Error).message;
      }
    }
  }
  await Promise.all(
    Array.from({ length: Math.min(options.parallel, options.count) }, worker),
  );
  return {
    open: options.count - failed,
    failed,
    ms: Math.round(performance.now() - started),
    firstError,
  };
}

function report() {
  const sorted = Float64Array.from(latencies).sort();
  const result = {
    events: sorted.length,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length ? sorted[sorted.length - 1] : NaN,
    minMs: sorted.length ? sorted[0] : NaN,
    malformed,
    ended,
  };
  latencies = [];
  return result;
}

/** The tally of the tracked watches, with what this process counted. */
function tally(sent: number) {
  return {
    ...tallyWatches(tracked, sent),
    malformed,
    ended,
    reopened,
    reopenFailed,
  };
}

function received(): number {
  if (!options.track) return latencies.length;
  return tracked.reduce((n, w) => n + w.distinct, 0);
}

reply({ msg: "ready" });
const decoder = new TextDecoderStream();
let buffered = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(decoder)) {
  buffered += chunk;
  let nl: number;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const cmd = JSON.parse(buffered.slice(0, nl));
    buffered = buffered.slice(nl + 1);
    if (cmd.cmd === "open") {
      openAll().then((r) => reply({ id: cmd.id, ok: true, ...r }));
    } else if (cmd.cmd === "count") {
      reply({ id: cmd.id, ok: true, events: received() });
    } else if (cmd.cmd === "tally") {
      reply({ id: cmd.id, ok: true, ...tally(Number(cmd.sent)) });
    } else if (cmd.cmd === "report") {
      reply({ id: cmd.id, ok: true, ...report() });
    } else if (cmd.cmd === "close") {
      closing = true;
      for (const req of requests) req.destroy();
      reply({ id: cmd.id, ok: true });
      Deno.exit(0);
    }
  }
}
Deno.exit(0);
