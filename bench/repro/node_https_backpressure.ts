/**
 * Stand-alone check: does a `node:https` client response stop the socket
 * from being read while it is paused? (Deno 2.9.6: no — the whole body is
 * read into memory at once; `fetch` does stop.) The upstream runs in its own
 * process so the RSS printed is the client's alone.
 *
 *   deno run -A bench/repro/node_https_backpressure.ts [MiB]
 *
 * @module
 */

import { request } from "node:https";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { startControlled } from "../control.ts";
import { sleep } from "../procs.ts";

const mib = Number(Deno.args[0] ?? 200);
const dir = fileURLToPath(new URL("../../tmp/bench/repro/", import.meta.url));
await Deno.mkdir(dir, { recursive: true });
const up = await startControlled(
  "upstream",
  fileURLToPath(new URL("../upstream_proc.ts", import.meta.url)),
  ["t"],
  join(dir, "upstream"),
);
const port = Number(up.ready.port);
const ca = String(up.ready.caPem);
const path = `/big?bytes=${mib * 1048576}`;
const rss = () => Math.round(Deno.memoryUsage().rss / 1048576);

async function nodeHttpsPaused(): Promise<number> {
  const before = rss();
  const { promise, resolve } = Promise.withResolvers<number>();
  const req = request({
    host: "127.0.0.1",
    port,
    path,
    ca,
    agent: false,
    headers: { authorization: "Bearer t" },
  }, async (res) => {
    res.pause(); // never resumed: a client that stopped reading
    await sleep(2000);
    const grown = rss() - before;
    res.destroy();
    resolve(grown);
  });
  req.end();
  return await promise;
}

async function fetchUnread(): Promise<number> {
  const before = rss();
  const client = Deno.createHttpClient({ caCerts: [ca] });
  const res = await fetch(`https://127.0.0.1:${port}${path}`, {
    client,
    headers: { authorization: "Bearer t" },
  });
  await sleep(2000); // body not read
  const grown = rss() - before;
  await res.body?.cancel();
  client.close();
  return grown;
}

try {
  console.log(
    `node:https response paused 2 s: RSS +${await nodeHttpsPaused()} MiB (body ${mib} MiB)`,
  );
  console.log(
    `fetch body unread 2 s:          RSS +${await fetchUnread()} MiB (body ${mib} MiB)`,
  );
} finally {
  await up.stop();
}
