/**
 * Watches through `mca` share HTTP/2 connections to a real kube-apiserver,
 * as client-go's do: 120 watches from 120 app connections reach the API
 * server over at most a few TLS connections, and every one of them still
 * gets every event (lib/clusters/stream_clients.ts).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startCluster } from "../support/cluster.ts";
import { type LocalMca, startLocalMca } from "../support/local_mca.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const WATCHES = 120;

/** Socket inodes of `pid`'s open file descriptors. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const link = Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`);
      const m = link.match(/^socket:\[(\d+)\]$/);
      if (m) out.add(m[1]);
    } catch {
      // closed while listed
    }
  }
  return out;
}

/** Established TCP connections of `pid` to `port` (IPv4 and IPv6 tables). */
function connectionsOf(pid: number, port: number): number {
  const inodes = socketInodes(pid);
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let n = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of Deno.readTextFileSync(table).split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[2]?.endsWith(hex) && f[3] === "01" && inodes.has(f[9])) n++;
    }
  }
  return n;
}

/** One watch's lines as they arrive. */
function watch(
  url: string,
  options: { client: Deno.HttpClient; signal: AbortSignal },
): { lines: string[]; done: Promise<void> } {
  const lines: string[] = [];
  const done = (async () => {
    const answer = await fetch(url, {
      client: options.client,
      signal: options.signal,
      headers: { authorization: "Bearer anything" },
    });
    assert.equal(answer.status, 200);
    let buffered = "";
    for await (
      const text of answer.body!.pipeThrough(new TextDecoderStream())
    ) {
      buffered += text;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        lines.push(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    }
  })().catch((error) => {
    if (!options.signal.aborted) throw error;
  });
  return { lines, done };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

Deno.test("watches through mca share HTTP/2 connections to kube-apiserver, and each gets every event", async () => {
  await Deno.mkdir(join(ROOT, "tmp"), { recursive: true });
  const dir = await Deno.makeTempDir({
    dir: join(ROOT, "tmp"),
    prefix: "watch-conns-",
  });
  const cluster = await startCluster({ dir: join(dir, "cluster") });
  let mca: LocalMca | undefined;
  const aborter = new AbortController();
  let client: Deno.HttpClient | undefined;
  try {
    mca = await startLocalMca(cluster, {
      dir,
      token: await cluster.mintToken(),
    });
    // one HTTP/1.1 connection to mca per watch, as most SDKs open them
    client = Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(mca.caFile)],
      http1: true,
      http2: false,
    });
    const base =
      `https://127.0.0.1:${mca.port}/api/v1/namespaces/${cluster.namespace}/configmaps`;
    const watches = Array.from(
      { length: WATCHES },
      () =>
        watch(`${base}?watch=1`, { client: client!, signal: aborter.signal }),
    );
    // a watch from no version starts with the namespace's existing objects
    await until(
      "every watch's first event",
      () => watches.every((w) => w.lines.length >= 1),
    );
    const upstream = connectionsOf(mca.proc.pid, cluster.port);
    assert.ok(
      upstream <= 4,
      `${WATCHES} watches held ${upstream} connections to kube-apiserver`,
    );
    const created = await fetch(base, {
      client,
      method: "POST",
      headers: {
        authorization: "Bearer anything",
        "content-type": "application/json",
      },
      body: JSON.stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "seen-by-all" },
        data: { k: "v" },
      }),
    });
    assert.equal(created.status, 201, await created.text());
    await until(
      "the new object on every watch",
      () =>
        watches.every((w) =>
          w.lines.some((l) => {
            const e = JSON.parse(l);
            return e.type === "ADDED" &&
              e.object.metadata.name === "seen-by-all";
          })
        ),
    );
    aborter.abort();
    await Promise.all(watches.map((w) => w.done));
    const { code } = await mca.stop();
    assert.equal(code, 0);
  } finally {
    aborter.abort();
    client?.close();
    await mca?.kill();
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
