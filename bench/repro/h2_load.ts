/**
 * Loads `bench/repro/h2_server.ts` in each mode, interleaved round by round,
 * to decide whether Deno 2.9.6 can serve HTTP/2 to apps (issue 17, ADR 0007).
 * Per mode and round, on a fresh server process:
 *
 * - `c16m10`: h2load `-c 16 -m 10` (h1 modes: `--h1 -c 160`, the same number
 *   of requests in flight, since client-go does not pipeline);
 * - `c64m1`: h2load `-c 64 -m 1` (`--h1` for h1 modes);
 * - `watch200`: 200 watch-like streams for `--watch-s` (one HTTP/2
 *   connection; 200 connections over HTTP/1.1), each must get its lines;
 * - `upgrade`: a SPDY/3.1 `POST` and a WebSocket `GET` upgrade on an
 *   `http/1.1`-only TLS connection; ok when both get `101` and raw bytes
 *   come back (a WebSocket terminated by the server does not count);
 * - `reset`: three batches of `--resets` requests cancelled mid-answer (RST_STREAM
 *   over h2), RSS after each batch (a leak grows batch by batch).
 *
 * Reported per cell: whether the server survived, failed requests, req/s, the
 * server's CPU µs per request (user+sys from /proc), RSS after the cell, and
 * how much of the machine others used meanwhile. `h1-b` is a second `h1`
 * server, the A/A control.
 *
 *   deno run -A bench/repro/h2_load.ts [--rounds 3] [--seconds 10]
 *     [--watch-s 10] [--resets 4000] [--modes h1,h1-b,h2,h2h1,alpn]
 *
 * Needs h2load and Go (the client in bench/repro/h2_client is built into tmp/).
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  cpuSeconds,
  memory,
  type Proc,
  runCommand,
  spawn,
  stopAll,
} from "../procs.ts";
import { foreignPercent, loadSnapshot } from "../machine_load.ts";
import { defaultTestTls } from "../../tests/support/test_certs.ts";

const HERE = fileURLToPath(new URL("./", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const flags = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "10" },
    "watch-s": { type: "string", default: "10" },
    resets: { type: "string", default: "4000" },
    modes: { type: "string", default: "h1,h1-b,h2,h2h1,alpn" },
  },
}).values;
const SECONDS = Number(flags.seconds);
const DIR = join(ROOT, "tmp", "h2_load");

interface Cell {
  round: number;
  mode: string;
  cell: string;
  alive: boolean;
  ok: boolean;
  requests: number;
  reqPerS: number;
  cpuUsPerReq: number;
  rssMiB: number;
  foreignPct: number;
  note: string;
}

const cells: Cell[] = [];

async function setup(): Promise<{ cert: string; key: string; client: string }> {
  await Deno.mkdir(DIR, { recursive: true });
  const tls = defaultTestTls();
  const cert = join(DIR, "cert.pem");
  const key = join(DIR, "key.pem");
  await Deno.writeTextFile(cert, tls.server.certPem);
  await Deno.writeTextFile(key, tls.server.keyPem);
  const client = join(DIR, "h2-client");
  const built = await runCommand("go", ["build", "-o", client, "."], 120_000, {
    cwd: join(HERE, "h2_client"),
    env: { ...Deno.env.toObject(), GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local" },
  });
  if (built.code !== 0) throw new Error(`go build failed: ${built.stderr}`);
  return { cert, key, client };
}

async function startServer(
  mode: string,
  files: { cert: string; key: string },
): Promise<{ proc: Proc; port: number }> {
  const real = mode.replace(/-b$/, "");
  const proc = spawn(`h2-${mode}`, "deno", {
    args: [
      "run",
      "-A",
      join(HERE, "h2_server.ts"),
      `--mode=${real}`,
      `--cert=${files.cert}`,
      `--key=${files.key}`,
    ],
    logBase: join(DIR, `server-${mode}`),
  });
  const line = await proc.waitForLine((l) => l.includes('"ready"'), 20_000);
  return { proc, port: JSON.parse(line).ready };
}

function isH1(mode: string): boolean {
  return mode.startsWith("h1");
}

/** Runs one cell; `run` returns how many requests it made and a note. */
async function cell(
  ctx: { round: number; mode: string; proc: Proc },
  name: string,
  run: () => Promise<{ requests: number; ok: boolean; note: string }>,
): Promise<void> {
  const before = loadSnapshot();
  const cpu0 = cpuSeconds([ctx.proc.pid]);
  const t0 = performance.now();
  const r = await run();
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds([ctx.proc.pid]) - cpu0;
  let alive = true;
  let rss = NaN;
  try {
    rss = memory(ctx.proc.pid).rssKiB / 1024;
  } catch {
    alive = false;
  }
  cells.push({
    round: ctx.round,
    mode: ctx.mode,
    cell: name,
    alive,
    ok: r.ok && alive,
    requests: r.requests,
    reqPerS: Math.round(r.requests / wall),
    cpuUsPerReq: r.requests > 0 ? Math.round(cpu * 1e6 / r.requests) : NaN,
    rssMiB: Math.round(rss),
    foreignPct: foreignPercent(before, loadSnapshot()).foreignPct,
    note: r.note,
  });
  console.log(JSON.stringify(cells.at(-1)));
}

async function h2load(mode: string, port: number, c: number, m: number) {
  const args = isH1(mode)
    ? ["--h1", "-c", String(c * m), "-m", "1"]
    : ["-c", String(c), "-m", String(m)];
  args.push("-t", "1", "-D", `${SECONDS}`, `https://127.0.0.1:${port}/json`);
  const out = await runCommand("h2load", args, (SECONDS + 30) * 1000);
  const done = Number(out.stdout.match(/(\d+) succeeded/)?.[1] ?? 0);
  const failed = Number(out.stdout.match(/(\d+) failed/)?.[1] ?? 0) +
    Number(out.stdout.match(/(\d+) errored/)?.[1] ?? 0);
  const proto = out.stdout.match(/Application protocol: (\S+)/)?.[1] ?? "?";
  return {
    requests: done,
    ok: out.code === 0 && failed === 0 && done > 0,
    note: `proto ${proto}, failed ${failed}, exit ${out.code}`,
  };
}

async function goClient(client: string, args: string[]) {
  const out = await runCommand(client, args, 180_000);
  const line = out.stdout.trim().split("\n").at(-1) ?? "{}";
  try {
    return { code: out.code, r: JSON.parse(line), line };
  } catch {
    return { code: out.code, r: {}, line: line + out.stderr.slice(-200) };
  }
}

async function oneMode(
  round: number,
  mode: string,
  files: { cert: string; key: string; client: string },
): Promise<void> {
  const { proc, port } = await startServer(mode, files);
  const ctx = { round, mode, proc };
  const url = `https://127.0.0.1:${port}`;
  const h1 = isH1(mode) ? ["-h1"] : [];
  try {
    await cell(ctx, "c16m10", () => h2load(mode, port, 16, 10));
    await cell(ctx, "c64m1", () => h2load(mode, port, 64, 1));
    await cell(ctx, "watch200", async () => {
      const w = `${flags["watch-s"]}s`;
      const { code, r, line } = await goClient(files.client, [
        "-url",
        url,
        "-mode",
        "watch",
        "-n",
        "200",
        "-for",
        w,
        ...h1,
      ]);
      const lines = (r.minLines ?? 0) * 200;
      const expected = Number(flags["watch-s"]) * 10;
      return {
        requests: lines,
        ok: code === 0 && r.minLines >= expected * 0.5,
        note: line,
      };
    });
    await cell(ctx, "upgrade", async () => {
      const { code, line } = await goClient(files.client, [
        "-url",
        url,
        "-mode",
        "upgrade",
      ]);
      const probes: { status: string; echoed: boolean }[] = JSON.parse(line);
      const ok = probes.every((p) => / 101 /.test(p.status) && p.echoed);
      return { requests: probes.length, ok: code === 0 && ok, note: line };
    });
    for (const batch of [1, 2, 3]) {
      await cell(ctx, `reset${batch}`, async () => {
        const { code, r, line } = await goClient(files.client, [
          "-url",
          url,
          "-mode",
          "reset",
          "-n",
          String(flags.resets),
          "-c",
          "16",
          ...h1,
        ]);
        return { requests: r.done ?? 0, ok: code === 0, note: line };
      });
    }
  } finally {
    await proc.stop();
    const err = await Deno.readTextFile(join(DIR, `server-${mode}.err`)).catch(
      () => "",
    );
    if (err.trim() !== "") {
      console.log(
        `${mode} stderr: ${err.trim().split("\n").slice(-5).join(" | ")}`,
      );
    }
    await Deno.writeTextFile(join(DIR, `server-${mode}.err`), "");
  }
}

async function main(): Promise<void> {
  const files = await setup();
  const modes = String(flags.modes).split(",");
  for (let round = 1; round <= Number(flags.rounds); round++) {
    // Rotate the order so no mode always runs first or last.
    const order = modes.map((_, i) => modes[(i + round - 1) % modes.length]);
    for (const mode of order) await oneMode(round, mode, files);
  }
  await Deno.writeTextFile(
    join(DIR, "cells.json"),
    JSON.stringify(cells, null, 1),
  );
  summary();
}

/** Ranges over the cells whose server was still alive; deaths listed apart. */
function summary(): void {
  const key = (c: Cell) => `${c.mode} ${c.cell}`;
  const groups = new Map<string, Cell[]>();
  for (const c of cells) groups.set(key(c), [...(groups.get(key(c)) ?? []), c]);
  console.log(
    "\nmode cell | alive | ok | req/s | CPU µs/req | RSS MiB | foreign %",
  );
  for (const [k, g] of groups) {
    const live = g.filter((c) => c.alive);
    const range = (f: (c: Cell) => number) => {
      const v = live.map(f);
      return v.length ? `${Math.min(...v)}-${Math.max(...v)}` : "-";
    };
    console.log(
      `${k} | ${live.length}/${g.length} | ${
        g.filter((c) => c.ok).length
      }/${g.length} | ${range((c) => c.reqPerS)} | ${
        range((c) => c.cpuUsPerReq)
      } | ${range((c) => c.rssMiB)} | ${range((c) => c.foreignPct)}`,
    );
  }
  const dead = new Set<string>();
  for (const c of cells) {
    const server = `round ${c.round} ${c.mode}`;
    if (c.alive || dead.has(server)) continue;
    dead.add(server);
    console.log(`${server}: gone by the end of ${c.cell}`);
  }
}

try {
  await main();
} finally {
  await stopAll();
}
