import assert from "node:assert/strict";
import { type Agent, request } from "node:https";
import { pooledAgent } from "../../lib/clusters/pool.ts";
import { startRawUpstream } from "../support/raw_upstream.ts";

function get(agent: Agent, url: URL): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, agent, path: "/api" },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

Deno.test("pool: an idle pooled connection is closed by MCA after two idle sweeps, the next call opens a new one", async () => {
  const upstream = await startRawUpstream(() => true);
  const agent = pooledAgent({ keepAlive: true, ca: upstream.caPem }, 100);
  try {
    assert.equal(await get(agent, upstream.url), 200);
    assert.equal(await get(agent, upstream.url), 200);
    const idleFrom = performance.now();
    await upstream.closed(1); // the server never closes: MCA's side did
    assert.ok(performance.now() - idleFrom >= 90, "closed before the bound");
    assert.equal(await get(agent, upstream.url), 200);
    assert.deepEqual(
      upstream.heads.map((h) => [h.connection, h.index]),
      [[1, 1], [1, 2], [2, 1]],
    );
  } finally {
    agent.destroy();
    await upstream.close();
  }
});

Deno.test("pool: a call whose answer takes longer than the idle bound is not cut", async () => {
  const upstream = await startRawUpstream(() => 600);
  const agent = pooledAgent({ keepAlive: true, ca: upstream.caPem }, 100);
  try {
    assert.equal(await get(agent, upstream.url), 200);
    assert.equal(upstream.heads.length, 1);
  } finally {
    agent.destroy();
    await upstream.close();
  }
});
