/**
 * `deno task bench:soak`: a bounded soak of one mca in front of the fake
 * upstream (issue 11). Sixteen clients run a mixed load — GETs by name, LISTs
 * read to the end, LISTs and request bodies abandoned half-way (the pattern
 * that once left upstream connections behind) — for `--minutes` (10 by
 * default) or `--max-requests`, whichever comes first. Every `--every`
 * seconds it records mca's RSS and its established connections to the
 * upstream; after the load it waits (bounded) for idle connections to be
 * closed. Both series must stay flat: the verdict compares the last third of
 * the run with the first.
 *
 *   deno run -A bench/soak.ts [--minutes 10] [--max-requests 2000000]
 *                             [--every 10] [--out tmp/bench]
 *                             [--kinds 0,1,2,3,4]   (a subset of the mix)
 *                             [--rate 150]          (calls per second, at most)
 *
 * Writes `<out>/soak.json` and `<out>/soak.md`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { startControlled } from "./control.ts";
import { type Mca, startMca, writeFakeSaDir } from "./mca.ts";
import { memory, sleep, stopAll } from "./procs.ts";
import { round } from "./stats.ts";

const TOKEN = "bench-soak-token";
const CLIENTS = 16;

interface Sample {
  atS: number;
  rssMiB: number;
  upstreamConnections: number;
  requests: number;
  /** Calls read to the end that did not get a 200 (or failed to connect). */
  failed: number;
}

/** Established TCP connections to `port` on loopback (mca → upstream). */
function connectionsTo(port: number): number {
  let n = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== "01") continue; // 01 = ESTABLISHED
      const remotePort = parseInt(f[2].split(":")[1], 16);
      if (remotePort === port) n++;
    }
  }
  return n;
}

/**
 * One call of the mix over its own TLS connection; never throws. Resolves
 * false when a call that is read to the end did not get a 200 (or the
 * connection failed).
 */
async function oneCall(mca: Mca, kind: number): Promise<boolean> {
  let conn: Deno.TlsConn | undefined;
  try {
    conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: mca.port,
      caCerts: [mca.appCaPem],
    });
    const w = (s: string) => conn!.write(new TextEncoder().encode(s));
    const head = (method: string, path: string, extra = "") =>
      `${method} ${path} HTTP/1.1\r\nhost: localhost\r\n` +
      `authorization: Bearer placeholder\r\n${extra}connection: close\r\n\r\n`;
    if (kind === 0) {
      await w(head("GET", "/api/v1/namespaces/default/configmaps/soak"));
    } else if (kind === 1) {
      await w(head("GET", "/big?bytes=262144"));
    } else if (kind === 2) {
      // A LIST abandoned after its first bytes.
      await w(head("GET", "/big?bytes=4194304"));
      await conn.read(new Uint8Array(16384));
      return true;
    } else {
      // A body abandoned half-way (POST, or GET with a body).
      const method = kind === 3 ? "POST" : "GET";
      await w(head(
        method,
        "/api/v1/namespaces/default/configmaps",
        "content-type: application/json\r\ncontent-length: 200000\r\n",
      ));
      await w("x".repeat(40_000));
      return true;
    }
    const buf = new Uint8Array(65536);
    let first = "";
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      if (first === "") first = new TextDecoder().decode(buf.subarray(0, n));
    }
    return first.startsWith("HTTP/1.1 200");
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch {
      // already closed
    }
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      minutes: { type: "string", default: "10" },
      "max-requests": { type: "string", default: "2000000" },
      every: { type: "string", default: "10" },
      out: { type: "string", default: "tmp/bench" },
      kinds: { type: "string", default: "0,1,2,3,4" },
      rate: { type: "string", default: "150" },
    },
  });
  const minutes = Number(values.minutes);
  const maxRequests = Number(values["max-requests"]);
  const everyMs = Number(values.every) * 1000;
  const out = values.out!;
  const kinds = values.kinds!.split(",").map(Number);
  // Every call is a new connection; past ~400/s the loopback's ephemeral
  // ports run out (TIME_WAIT) and the harness, not mca, starts failing.
  const gapMs = 1000 / Number(values.rate);
  const logs = join(out, "soak-logs");
  await Deno.mkdir(logs, { recursive: true });
  const upstream = await startControlled(
    "soak-upstream",
    new URL("./upstream_proc.ts", import.meta.url).pathname,
    [TOKEN],
    join(logs, "upstream"),
  );
  const port = Number(upstream.ready.port);
  const saDir = join(logs, "real-sa");
  await writeFakeSaDir(saDir, TOKEN, String(upstream.ready.caPem));
  const mca = await startMca(
    { realSaDir: saDir, host: "127.0.0.1", port },
    { dir: logs, name: "soak-mca" },
  );
  const samples: Sample[] = [];
  let requests = 0;
  let failed = 0;
  const started = performance.now();
  const deadline = started + minutes * 60_000;
  let nextAt = started;
  const sample = () =>
    samples.push({
      atS: round((performance.now() - started) / 1000, 1),
      rssMiB: round(memory(mca.pid).rssKiB / 1024, 1),
      upstreamConnections: connectionsTo(port),
      requests,
      failed,
    });
  try {
    sample();
    const sampler = setInterval(sample, everyMs);
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        while (performance.now() < deadline && requests < maxRequests) {
          nextAt = Math.max(nextAt + gapMs, performance.now());
          const wait = nextAt - performance.now();
          if (wait > 0) await sleep(wait);
          const ok = await oneCall(
            mca,
            kinds[(requests + client) % kinds.length],
          );
          requests++;
          if (!ok) failed++;
        }
      }),
    );
    clearInterval(sampler);
    sample();
    // Idle connections close within the pool's idle bound; wait for it,
    // bounded.
    const idleBy = performance.now() + 20_000;
    while (connectionsTo(port) > CLIENTS && performance.now() < idleBy) {
      await sleep(500);
    }
    sample();
  } finally {
    await mca.stop();
    await upstream.stop();
    await stopAll();
  }
  return report(samples, { out, minutes });
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)];
}

async function report(
  samples: Sample[],
  args: { out: string; minutes: number },
): Promise<number> {
  const load = samples.slice(0, -1);
  const third = Math.max(1, Math.floor(load.length / 3));
  const first = load.slice(0, third);
  const last = load.slice(-third);
  const rssRatio = median(last.map((s) => s.rssMiB)) /
    median(first.map((s) => s.rssMiB));
  const connFirst = Math.max(...first.map((s) => s.upstreamConnections));
  const connLast = Math.max(...last.map((s) => s.upstreamConnections));
  const end = samples.at(-1)!;
  const flat = rssRatio <= 1.2 &&
    connLast <= Math.max(connFirst, CLIENTS) * 1.5 &&
    end.upstreamConnections <= CLIENTS * 2;
  const clean = end.failed === 0;
  const lines = [
    `# mca soak (${args.minutes} min, ${CLIENTS} clients, mixed load with abandoned bodies)`,
    "",
    "| s | requests | failed | RSS MiB | mca → upstream connections |",
    "|---|---|---|---|---|",
    ...samples.map((s) =>
      `| ${s.atS} | ${s.requests} | ${s.failed} | ${s.rssMiB} | ${s.upstreamConnections} |`
    ),
    "",
    `RSS last third ÷ first third (medians): ${round(rssRatio, 3)}; ` +
    `connections first third max ${connFirst}, last third max ${connLast}, ` +
    `after idle ${end.upstreamConnections}: ${
      flat ? "FLAT" : "**GROWING**"
    }; ` +
    `${end.failed} of ${end.requests} calls failed`,
    "",
  ];
  await Deno.writeTextFile(join(args.out, "soak.md"), lines.join("\n"));
  await Deno.writeTextFile(
    join(args.out, "soak.json"),
    JSON.stringify(
      { samples, rssRatio, connFirst, connLast, flat, clean },
      null,
      2,
    ),
  );
  console.log(lines.join("\n"));
  return flat && clean ? 0 : 1;
}

Deno.exit(await main());
