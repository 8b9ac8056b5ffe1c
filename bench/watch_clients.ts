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
 *   ← {"id":4,"cmd":"close"}
 *
 * @module
 */

import { request } from "node:https";
import type { ClientRequest, IncomingMessage } from "node:http";
import { percentile } from "./stats.ts";

interface Options {
  port: number;
  path: string;
  caPem: string;
  token: string;
  count: number;
  /** Connections opened at once while ramping up. */
  parallel: number;
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

function openOne(): Promise<void> {
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
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        onEventLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    });
    res.on("end", () => ended++);
    res.on("error", () => ended++);
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
      next++;
      try {
        await openOne();
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
      reply({ id: cmd.id, ok: true, events: latencies.length });
    } else if (cmd.cmd === "report") {
      reply({ id: cmd.id, ok: true, ...report() });
    } else if (cmd.cmd === "close") {
      for (const req of requests) req.destroy();
      reply({ id: cmd.id, ok: true });
      Deno.exit(0);
    }
  }
}
Deno.exit(0);
