import assert from "node:assert/strict";
import { createMetrics } from "../../lib/observe/metrics.ts";
import {
  type MetricsServer,
  startMetricsServer,
  wantsOpenMetrics,
} from "../../lib/observe/metrics_server.ts";
import { parseRequestInfo } from "../../lib/kube/request_info.ts";

const SECRET = "Bearer sekrit-token-value";

async function withServer(
  f: (s: MetricsServer, base: string) => Promise<void>,
): Promise<void> {
  const metrics = createMetrics({ defaultCollectors: false });
  const o = metrics.observer.start({
    id: 1,
    info: parseRequestInfo("GET", "/api/v1/pods"),
    method: "GET",
    startedAt: performance.now(),
    receivedAt: new Date(),
    upgrade: false,
  });
  o.end({
    status: 200,
    bytesIn: 0,
    bytesOut: 1,
    durationMs: 1,
    cluster: "local",
    outcomes: [],
  });
  const server = await startMetricsServer(metrics, {
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    await f(server, `http://127.0.0.1:${server.port}`);
  } finally {
    await server.close();
  }
}

/** Sends raw bytes; resolves with what came back before the server closed or `ms` passed. */
async function raw(
  port: number,
  bytes: Uint8Array,
  ms = 3000,
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const chunks: Uint8Array[] = [];
  const timer = setTimeout(() => conn.close(), ms);
  try {
    await conn.write(bytes).catch(() => 0);
    const buf = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      if (new TextDecoder().decode(buf.subarray(0, n)).includes("\r\n\r\n")) {
        break;
      }
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
  return new TextDecoder().decode(
    chunks.reduce((a, c) => new Uint8Array([...a, ...c]), new Uint8Array()),
  );
}

Deno.test("metrics server: GET /metrics serves text, OpenMetrics on request, HEAD has no body", async () => {
  await withServer(async (_s, base) => {
    const text = await fetch(`${base}/metrics`, {
      headers: { authorization: SECRET },
    });
    assert.equal(text.status, 200);
    assert.match(
      text.headers.get("content-type")!,
      /^text\/plain; version=0\.0\.4/,
    );
    const body = await text.text();
    assert.match(body, /^mca_requests_total\{.*\} 1$/m);
    assert.ok(!body.includes("sekrit"));
    const om = await fetch(`${base}/metrics`, {
      headers: {
        accept:
          "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
      },
    });
    assert.match(
      om.headers.get("content-type")!,
      /^application\/openmetrics-text; version=1\.0\.0/,
    );
    assert.match(await om.text(), /# EOF\n?$/);
    const head = await fetch(`${base}/metrics`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
  });
});

Deno.test("metrics server: other paths are 404, other methods 405, nothing echoed", async () => {
  await withServer(async (_s, base) => {
    for (
      const path of [
        "/",
        "/metrics/",
        "/metricsx",
        `/${SECRET.replace(" ", "")}`,
      ]
    ) {
      const r = await fetch(`${base}${path}`, {
        headers: { authorization: SECRET },
      });
      assert.equal(r.status, 404, path);
      assert.ok(!(await r.text()).includes("sekrit"));
    }
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const r = await fetch(`${base}/metrics`, { method, body: SECRET });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.get("allow"), "GET, HEAD");
      assert.ok(!(await r.text()).includes("sekrit"));
    }
  });
});

Deno.test("metrics server: hostile bytes, huge headers and slow clients do not take it down", async () => {
  await withServer(async (s, base) => {
    const enc = new TextEncoder();
    const garbage = await raw(
      s.port,
      crypto.getRandomValues(new Uint8Array(4096)),
    );
    assert.ok(
      garbage === "" || /^HTTP\/1\.1 4\d\d/.test(garbage),
      garbage.slice(0, 80),
    );
    const nul = await raw(
      s.port,
      enc.encode("GET /metrics\0 HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    assert.ok(nul === "" || /^HTTP\/1\.1 4\d\d/.test(nul), nul.slice(0, 80));
    const huge = await raw(
      s.port,
      enc.encode(
        `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${
          "a".repeat(1 << 20)
        }\r\n\r\n`,
      ),
    );
    assert.ok(huge === "" || /^HTTP\/1\.1 4\d\d/.test(huge), huge.slice(0, 80));
    // Slowloris: connections that never finish their headers.
    const slow = await Promise.all(
      Array.from(
        { length: 20 },
        () => Deno.connect({ hostname: "127.0.0.1", port: s.port }),
      ),
    );
    try {
      for (const c of slow) {
        await c.write(enc.encode("GET /metrics HTTP/1.1\r\nHost: x\r\n"));
      }
      const ok = await fetch(`${base}/metrics`);
      assert.equal(
        ok.status,
        200,
        "scrapes still answered while slow clients hang",
      );
      await ok.body?.cancel();
    } finally {
      for (const c of slow) c.close();
    }
    const after = await fetch(`${base}/metrics`);
    assert.equal(after.status, 200);
    await after.body?.cancel();
  });
});

Deno.test("metrics server: Accept negotiation", () => {
  assert.equal(wantsOpenMetrics(null), false);
  assert.equal(wantsOpenMetrics("text/plain"), false);
  assert.equal(
    wantsOpenMetrics("application/openmetrics-text; version=1.0.0"),
    true,
  );
  assert.equal(
    wantsOpenMetrics("application/openmetrics-text;q=0,text/plain"),
    false,
  );
});

Deno.test("metrics server: a taken port fails with a message naming the flag", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await assert.rejects(
      startMetricsServer(createMetrics({ defaultCollectors: false }), {
        hostname: "127.0.0.1",
        port: (taken.addr as Deno.NetAddr).port,
      }),
      /--metrics-port/,
    );
  } finally {
    taken.close();
  }
});
