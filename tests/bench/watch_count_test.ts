/**
 * The soak's event counter (bench/watch_clients.ts with `track`) against an
 * oracle it does not share: the sequence numbers this test pushes. Gaps,
 * repeats and reordering must show up as lost, duplicates and out of order,
 * and a watch the upstream ends must be re-opened and counted.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type Controlled, startControlled } from "../../bench/control.ts";
import { stopAll } from "../../bench/procs.ts";
import {
  type FakeUpstream,
  startFakeUpstream,
} from "../support/fake_upstream.ts";

const CLIENTS = fileURLToPath(
  new URL("../../bench/watch_clients.ts", import.meta.url),
);

function event(seq: number): object {
  return {
    type: "MODIFIED",
    object: {
      kind: "ConfigMap",
      apiVersion: "v1",
      metadata: {
        name: "w",
        namespace: "default",
        resourceVersion: String(1000 + seq),
      },
    },
    sentAt: performance.timeOrigin + performance.now(),
  };
}

/** bench/watch_clients.ts holding `count` watches on `upstream`. */
async function startClients(
  upstream: FakeUpstream,
  name: string,
  options: { count: number; track?: boolean },
): Promise<Controlled> {
  await Deno.mkdir("tmp/tests/watch_count", { recursive: true });
  return await startControlled(
    name,
    CLIENTS,
    [JSON.stringify({
      port: upstream.port,
      path: "/api/v1/namespaces/default/configmaps?watch=1",
      caPem: upstream.caPem,
      token: "fake-upstream-sa-token",
      parallel: options.count,
      ...options,
    })],
    `tmp/tests/watch_count/${name}`,
  );
}

Deno.test("watch_clients track: lost, duplicate, reordered and re-opened watches are counted", async () => {
  const upstream = await startFakeUpstream();
  const clients = await startClients(upstream, "watch-count-clients", {
    count: 3,
    track: true,
  });
  try {
    const opened = await clients.send({ cmd: "open" }, 30_000);
    assert.equal(opened.failed, 0);
    await upstream.waitForWatches(3, 10_000);
    // 0..9 with 4 and 5 missing, 2 repeated after 3 (a repeat and a step back).
    for (const seq of [0, 1, 2, 3, 2, 6, 7]) {
      upstream.pushWatchEvent(event(seq));
    }
    const waitFor = async (n: number) => {
      for (let i = 0; i < 100; i++) {
        const { events } = await clients.send({ cmd: "count" }, 5_000);
        if (Number(events) >= n) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`fewer than ${n} events arrived`);
    };
    await waitFor(3 * 6);
    // The upstream ends every watch; the clients open them again.
    upstream.closeWatches();
    await upstream.waitForWatches(3, 10_000);
    for (const seq of [8, 9]) upstream.pushWatchEvent(event(seq));
    await waitFor(3 * 8);
    const t = await clients.send({ cmd: "tally", sent: 10 }, 5_000);
    assert.equal(t.expected, 30);
    assert.equal(t.received, 24);
    assert.equal(t.lost, 6); // 4 and 5, on each of 3 watches
    assert.equal(t.watchesWithLoss, 3);
    assert.equal(t.duplicates, 3);
    assert.equal(t.outOfOrder, 3);
    assert.equal(t.malformed, 0);
    assert.equal(t.ended, 3);
    assert.equal(t.reopened, 3);
  } finally {
    await clients.send({ cmd: "close" }, 5_000).catch(() => {});
    await clients.stop();
    await upstream.close();
    await stopAll();
  }
});

Deno.test("watch_clients without track: counts event lines and their latency (the watch bench)", async () => {
  const upstream = await startFakeUpstream();
  const clients = await startClients(upstream, "watch-latency-clients", {
    count: 2,
  });
  try {
    assert.equal((await clients.send({ cmd: "open" }, 30_000)).failed, 0);
    await upstream.waitForWatches(2, 10_000);
    for (const seq of [0, 1, 2]) upstream.pushWatchEvent(event(seq));
    let events = 0;
    for (let i = 0; i < 100 && events < 6; i++) {
      events = Number((await clients.send({ cmd: "count" }, 5_000)).events);
      if (events < 6) await new Promise((r) => setTimeout(r, 50));
    }
    const r = await clients.send({ cmd: "report" }, 5_000);
    assert.equal(r.events, 6);
    assert.equal(r.malformed, 0);
    assert.ok(Number(r.p50Ms) >= 0 && Number(r.maxMs) < 10_000);
    // A watch the upstream ends is not re-opened without track.
    upstream.closeWatches();
    for (let i = 0; i < 100 && Number(r.ended) < 2; i++) {
      r.ended = (await clients.send({ cmd: "report" }, 5_000)).ended;
      if (Number(r.ended) < 2) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(r.ended, 2);
    assert.equal(upstream.openWatches(), 0);
  } finally {
    await clients.send({ cmd: "close" }, 5_000).catch(() => {});
    await clients.stop();
    await upstream.close();
    await stopAll();
  }
});
