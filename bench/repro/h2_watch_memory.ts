/**
 * What N watches cost the client side of a Deno process, per upstream
 * transport, with nothing of MCA in it: the question of issue 17 whether
 * one multiplexed HTTP/2 connection per cluster (what client-go does)
 * would take the per-watch upstream connection off mca's memory.
 *
 *   deno run -A bench/repro/h2_watch_memory.ts [N] [--modes node,h1,h2]
 *     [--events 10] [--streams-per-client 100] [--read-buffer 8192]
 *
 * A child process serves `GET /watch` with `Deno.serve` over TLS (it speaks
 * HTTP/2 or HTTP/1.1, by ALPN, as kube-apiserver does): each answer is a
 * never-ending chunked stream of ~300-byte JSON lines, one when the watch
 * opens and then one per watch whenever this process asks for a round.
 * For each mode a fresh client process opens N watches, waits for every
 * first line, then for `--events` rounds, and reports its RSS and JS heap
 * against its own before-state, divided by N, with the TCP connections it
 * holds to the server:
 *
 * - `node`: `node:https` with `agent: false`, one connection per watch
 *   (what mca does today);
 * - `h1`: `fetch` through one HTTP/1.1-only `Deno.HttpClient`, each body
 *   read with a BYOB reader into one buffer of `--read-buffer` bytes
 *   (mca's LIST reader uses 64 KiB, plus a 64 KiB arena);
 * - `h2`: `fetch` through HTTP/2-only clients, a new client (one
 *   connection) per `--streams-per-client` watches: a single HTTP/2
 *   connection holds new streams back beyond the server's concurrent
 *   stream limit (kube-apiserver: 1,000 by default; hyper's server: 200).
 *
 * @module
 */

import { request } from "node:https";
import { parseArgs } from "node:util";
import { defaultTestTls } from "../../tests/support/test_certs.ts";

const encoder = new TextEncoder();

function mem(): { rssKiB: number; heapKiB: number } {
  const s = Deno.readTextFileSync("/proc/self/status");
  const rss = Number(s.match(/VmRSS:\s+(\d+)/)![1]);
  const u = Deno.memoryUsage();
  return {
    rssKiB: rss,
    heapKiB: Math.round((u.heapTotal + u.external) / 1024),
  };
}

/** Lines read on stdin, one at a time. */
async function* commands(): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of Deno.stdin.readable) {
    buffered += decoder.decode(chunk);
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
}

function event(n: number): Uint8Array {
  const object = {
    type: "MODIFIED",
    object: {
      kind: "ConfigMap",
      apiVersion: "v1",
      metadata: { name: `cm-${n}`, namespace: "default", resourceVersion: n },
      data: { key: "x".repeat(160) },
    },
  };
  return encoder.encode(JSON.stringify(object) + "\n");
}

/** The server: `Deno.serve` over TLS; "round" on stdin sends one event. */
async function serve(cert: string, key: string): Promise<void> {
  const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  let n = 0;
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert,
    key,
    onListen: ({ port }) => console.log(JSON.stringify({ port })),
  }, () => {
    let mine: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        mine = c;
        streams.add(c);
        c.enqueue(event(n));
      },
      cancel() {
        streams.delete(mine);
      },
    });
    return new Response(body, {
      headers: { "content-type": "application/json" },
    });
  });
  for await (const cmd of commands()) {
    if (cmd !== "round") continue;
    const bytes = event(++n);
    for (const c of streams) c.enqueue(bytes);
    console.log(JSON.stringify({ sent: streams.size }));
  }
}

type Opened = { lines: () => number };

function openNode(url: URL, ca: string): Opened {
  let lines = 0;
  const req = request(url, { agent: false, ca }, (res) => {
    res.on("data", (chunk: Uint8Array) => {
      for (const b of chunk) if (b === 10) lines++;
    });
  });
  req.end();
  return { lines: () => lines };
}

/**
 * A watch read with a BYOB reader and one buffer of `bufferBytes` given
 * back on every read (the default reader would allocate 64 KiB per read).
 */
function openFetch(
  url: URL,
  client: Deno.HttpClient,
  bufferBytes: number,
): Opened {
  let lines = 0;
  (async () => {
    const res = await fetch(url, { client });
    const reader = res.body!.getReader({ mode: "byob" });
    let buffer = new ArrayBuffer(bufferBytes);
    for (;;) {
      const { value, done } = await reader.read(new Uint8Array(buffer));
      if (done) return;
      for (const b of value) if (b === 10) lines++;
      buffer = value.buffer as ArrayBuffer;
    }
  })().catch(() => {});
  return { lines: () => lines };
}

/** Established TCP connections of this process to `port` (`/proc/net/tcp`). */
function connectionsTo(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const table = Deno.readTextFileSync("/proc/net/tcp");
  return table.split("\n").filter((l) => {
    const f = l.trim().split(/\s+/);
    return f[2]?.endsWith(`:${hex}`) && f[3] === "01";
  }).length;
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One client process: opens the watches, reports on stdout. */
async function client(args: {
  mode: string;
  port: number;
  ca: string;
  n: number;
  perClient: number;
  bufferBytes: number;
}): Promise<void> {
  const url = new URL(`https://127.0.0.1:${args.port}/watch`);
  const clients: Deno.HttpClient[] = [];
  const h2 = args.mode === "h2";
  const clientFor = (i: number): Deno.HttpClient => {
    const k = h2 ? Math.floor(i / args.perClient) : 0;
    clients[k] ??= Deno.createHttpClient({
      caCerts: [args.ca],
      http1: !h2,
      http2: h2,
    });
    return clients[k];
  };
  // warm: load the code paths once, so the before-state includes them
  const warm = args.mode === "node"
    ? openNode(url, args.ca)
    : openFetch(url, clientFor(0), args.bufferBytes);
  await until("the warm-up watch", () => warm.lines() >= 1);
  const before = mem();
  const watches: Opened[] = [];
  for (let i = 0; i < args.n; i++) {
    watches.push(
      args.mode === "node"
        ? openNode(url, args.ca)
        : openFetch(url, clientFor(i), args.bufferBytes),
    );
  }
  const total = () => watches.reduce((s, w) => s + w.lines(), 0);
  await until("every watch's first line", () => total() >= args.n);
  const opened = mem();
  const connections = connectionsTo(args.port);
  console.log(JSON.stringify({ opened: true }));
  let rounds = 0;
  for await (const cmd of commands()) {
    if (cmd !== "sent") continue;
    rounds++;
    await until(`round ${rounds}`, () => total() >= args.n * (1 + rounds));
    console.log(JSON.stringify({ round: rounds }));
    if (cmd === "sent" && rounds === Number(Deno.env.get("ROUNDS"))) break;
  }
  const flowed = mem();
  const per = (a: typeof before, b: typeof before) => ({
    rssKiB: Math.round((b.rssKiB - a.rssKiB) / args.n * 10) / 10,
    heapKiB: Math.round((b.heapKiB - a.heapKiB) / args.n * 10) / 10,
  });
  console.log(JSON.stringify({
    report: {
      mode: args.mode,
      connections,
      open: per(before, opened),
      afterEvents: per(before, flowed),
      rssMiB: Math.round(flowed.rssKiB / 102.4) / 10,
    },
  }));
  Deno.exit(0);
}

if (import.meta.main) await main();

async function main(): Promise<void> {
  if (Deno.args[0] === "serve") {
    const { cert, key } = JSON.parse(Deno.args[1]);
    return await serve(cert, key);
  }
  if (Deno.args[0] === "client") return await client(JSON.parse(Deno.args[1]));
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      modes: { type: "string", default: "node,h1,h2" },
      events: { type: "string", default: "10" },
      "streams-per-client": { type: "string", default: "100" },
      "read-buffer": { type: "string", default: "8192" },
    },
  });
  const n = Number(positionals[0] ?? 1000);
  const events = Number(values.events);
  const tls = defaultTestTls();
  for (const mode of values.modes.split(",")) {
    const report = await runMode({
      mode,
      n,
      events,
      perClient: Number(values["streams-per-client"]),
      bufferBytes: Number(values["read-buffer"]),
      cert: tls.server.certPem,
      key: tls.server.keyPem,
      ca: tls.ca.certPem,
    });
    console.log(JSON.stringify(report));
  }
}

/** A child process spoken to by lines of JSON. */
interface Child {
  send(line: string): Promise<void>;
  next(): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

function spawnChild(args: string[], env: Record<string, string>): Child {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
    env,
  }).spawn();
  const writer = proc.stdin.getWriter();
  const lines = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return {
    send: (line) => writer.write(encoder.encode(line + "\n")),
    async next() {
      for (;;) {
        const nl = buffered.indexOf("\n");
        if (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          return JSON.parse(line);
        }
        const { value, done } = await lines.read();
        if (done) throw new Error(`child ${args[0]} ended early`);
        buffered += value;
      }
    },
    async stop() {
      try {
        proc.kill("SIGTERM");
      } catch {
        // already gone
      }
      await proc.status;
      await lines.cancel().catch(() => {});
    },
  };
}

async function runMode(o: {
  mode: string;
  n: number;
  events: number;
  perClient: number;
  bufferBytes: number;
  cert: string;
  key: string;
  ca: string;
}): Promise<unknown> {
  const server = spawnChild(
    ["serve", JSON.stringify({ cert: o.cert, key: o.key })],
    {},
  );
  try {
    const { port } = await server.next() as { port: number };
    const client = spawnChild([
      "client",
      JSON.stringify({
        mode: o.mode,
        port,
        ca: o.ca,
        n: o.n,
        perClient: o.perClient,
        bufferBytes: o.bufferBytes,
      }),
    ], { ROUNDS: String(o.events) });
    try {
      await client.next(); // every watch open
      for (let r = 0; r < o.events; r++) {
        await server.send("round");
        await server.next();
        await client.send("sent");
        await client.next();
      }
      return (await client.next()).report;
    } finally {
      await client.stop();
    }
  } finally {
    await server.stop();
  }
}
