import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Agent, request } from "node:https";
import {
  appCall,
  floodWatches,
  openUnreadCall,
  startFixture,
} from "../support/sidecar_fixture.ts";
import {
  DEFAULT_FAKE_TOKEN,
  GZIP_PLAIN_BODY,
  startFakeUpstream,
} from "../support/fake_upstream.ts";
import { runProbe } from "../../lib/sidecar/probe.ts";
import { PLACEHOLDER_TOKEN } from "../../lib/sidecar/service_account.ts";
import { openWatch, untilLogged } from "../support/multicluster.ts";
import { connect } from "node:tls";

function callLines(logs: string[]) {
  return logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "api call");
}

Deno.test("proxy: the app's credentials are replaced by the real token", async () => {
  const f = await startFixture();
  try {
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/team-a/configmaps/foo",
      {
        headers: {
          "impersonate-user": "system:admin",
          "impersonate-group": "system:masters",
          "impersonate-extra-scopes": "x",
          "x-remote-user": "root",
          cookie: "session=1",
          "proxy-authorization": "Basic eDp5",
          connection: "x-hop",
          "x-hop": "1",
          "user-agent": "kubectl/v1.34.4 (test)",
          accept: "application/json",
        },
      },
    );
    assert.equal(answer.status, 200, answer.text);
    assert.equal(JSON.parse(answer.text).metadata.name, "foo");
    const seen = f.upstream.requests.at(-1)!;
    assert.equal(seen.headers.authorization, `Bearer ${DEFAULT_FAKE_TOKEN}`);
    for (
      const h of [
        "impersonate-user",
        "impersonate-group",
        "impersonate-extra-scopes",
        "x-remote-user",
        "cookie",
        "proxy-authorization",
        "x-hop",
      ]
    ) {
      assert.equal(seen.headers[h], undefined, `${h} must not reach upstream`);
    }
    assert.equal(seen.headers.accept, "application/json");
    assert.equal(seen.headers["user-agent"], "kubectl/v1.34.4 (test)");
    const [line] = callLines(f.logs);
    assert.equal(line.verb, "get");
    assert.equal(line.resource, "configmaps");
    assert.equal(line.namespace, "team-a");
    assert.equal(line.name, "foo");
    assert.equal(line.apiVersion, "v1");
    assert.equal(line.status, 200);
    assert.equal(line.cluster, "local");
    assert.equal(line.userAgent, "kubectl/v1.34.4 (test)");
    assert.ok(line.bytesOut > 0);
    assert.equal(typeof line.durationMs, "number");
    for (const l of f.logs) assert.ok(!l.includes(DEFAULT_FAKE_TOKEN));
  } finally {
    await f.close();
  }
});

Deno.test("proxy: the app's service-account directory and readiness", async () => {
  const f = await startFixture();
  try {
    const token = await Deno.readTextFile(`${f.appSaDir}/token`);
    assert.equal(token, PLACEHOLDER_TOKEN);
    assert.ok(!token.endsWith("\n"));
    assert.equal(await Deno.readTextFile(`${f.appSaDir}/namespace`), "team-a");
    assert.match(f.appCa(), /BEGIN CERTIFICATE/);
    assert.notEqual(f.appCa(), f.upstream.caPem);
    const probe = await runProbe({
      saDir: f.appSaDir,
      port: f.port,
      timeoutMs: 2000,
    });
    assert.deepEqual(probe, { ok: true, reason: "ready" });
    const ready = JSON.parse(f.logs[0]);
    assert.equal(ready.msg, "ready");
    assert.equal(ready.caReused, false);
  } finally {
    await f.close();
  }
});

Deno.test("proxy: a watch is streamed event by event", async () => {
  const f = await startFixture();
  try {
    const { promise: headers, resolve: gotHeaders } = Promise.withResolvers<
      number
    >();
    const lines: string[] = [];
    let waiter: (() => void) | undefined;
    const { promise: ended, resolve: end } = Promise.withResolvers<void>();
    const req = request({
      host: "127.0.0.1",
      port: f.port,
      path: "/api/v1/namespaces/team-a/configmaps?watch=1",
      ca: f.appCa(),
      agent: false,
    }, (res) => {
      gotHeaders(res.statusCode ?? 0);
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          lines.push(buffer.slice(0, nl));
          buffer = buffer.slice(nl + 1);
          waiter?.();
        }
      });
      res.on("end", () => end());
    });
    req.end();
    const nextLine = (n: number): Promise<void> => {
      if (lines.length >= n) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      waiter = () => lines.length >= n && resolve();
      return promise;
    };
    // headers arrive before any event: watch clients rely on it
    assert.equal(await headers, 200);
    await f.upstream.waitForWatches(1);
    f.upstream.pushWatchEvent({ type: "ADDED", object: { n: 1 } });
    await nextLine(1);
    f.upstream.pushWatchEvent({ type: "MODIFIED", object: { n: 2 } });
    await nextLine(2);
    assert.deepEqual(lines.map((l) => JSON.parse(l).type), [
      "ADDED",
      "MODIFIED",
    ]);
    f.upstream.closeWatches();
    await ended;
    assert.equal(callLines(f.logs)[0].verb, "watch");
  } finally {
    await f.close();
  }
});

Deno.test("proxy: bodies stream both ways unchanged", async () => {
  const f = await startFixture();
  try {
    const size = 24 * 1024 * 1024;
    const chunked = await appCall(f, "GET", `/big?bytes=${size}`);
    assert.equal(chunked.body.length, size);
    const sized = await appCall(f, "GET", `/big?bytes=${size}&length=1`);
    assert.equal(sized.body.length, size);
    assert.equal(sized.headers["content-length"], String(size));

    const body = JSON.stringify({ data: "x".repeat(3 * 1024 * 1024) });
    const posted = await appCall(
      f,
      "POST",
      "/api/v1/namespaces/team-a/configmaps",
      { body, headers: { "content-type": "application/json" } },
    );
    assert.equal(posted.status, 201);
    const echo = JSON.parse(posted.text);
    assert.equal(echo.received, body.length);
    assert.equal(
      echo.sha256,
      createHash("sha256").update(body).digest("hex"),
    );

    // A read that can be large goes through fetch, which decodes gzip: the
    // app gets the plain bytes, labelled as such (no stale encoding/length).
    const gz = await appCall(f, "GET", "/gzip", {
      headers: { "accept-encoding": "gzip" },
    });
    assert.equal(gz.headers["content-encoding"], undefined);
    assert.equal(gz.text, GZIP_PLAIN_BODY);
    assert.equal(
      f.upstream.requests.at(-1)!.headers["accept-encoding"],
      "gzip",
    );
  } finally {
    await f.close();
  }
});

Deno.test("proxy: upstream errors pass through as the SDKs expect", async () => {
  const f = await startFixture();
  try {
    const forbidden = await appCall(f, "GET", "/status/403");
    assert.equal(forbidden.status, 403);
    assert.equal(JSON.parse(forbidden.text).kind, "Status");
  } finally {
    await f.close();
  }
});

Deno.test("proxy: upstream down gives a 503 Status with Retry-After", async () => {
  const f = await startFixture({ connectTimeoutMs: 2000 });
  try {
    await f.upstream.close();
    const answer = await appCall(f, "GET", "/api/v1/namespaces/team-a/pods");
    assert.equal(answer.status, 503);
    assert.equal(answer.headers["content-type"], "application/json");
    assert.equal(answer.headers["retry-after"], "1");
    const status = JSON.parse(answer.text);
    assert.equal(status.kind, "Status");
    assert.equal(status.status, "Failure");
    assert.equal(status.reason, "ServiceUnavailable");
    assert.equal(status.code, 503);
    assert.match(status.message, /unreachable/);
  } finally {
    await f.sidecar.close();
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("proxy: a client abort mid-watch closes the upstream watch", async () => {
  const f = await startFixture();
  try {
    const req = request({
      host: "127.0.0.1",
      port: f.port,
      path: "/api/v1/namespaces/team-a/configmaps?watch=true",
      ca: f.appCa(),
      agent: false,
    }, (res) => {
      res.once("data", () => req.destroy());
    });
    req.on("error", () => {});
    req.end();
    await f.upstream.waitForWatches(1);
    f.upstream.pushWatchEvent({ type: "ADDED", object: {} });
    await f.upstream.waitForAborts(1);
    assert.equal(f.upstream.openWatches(), 0);
  } finally {
    await f.close();
  }
});

Deno.test("proxy: token rotation under load: no failure, new token at once", async () => {
  const f = await startFixture();
  const agent = new Agent({ keepAlive: true, ca: f.appCa() });
  try {
    f.upstream.acceptTokens([DEFAULT_FAKE_TOKEN, "rotated-token"]);
    let stop = false;
    let failures = 0;
    let count = 0;
    const worker = async () => {
      while (!stop) {
        const answer = await appCall(f, "GET", "/version");
        if (answer.status !== 200) failures++;
        count++;
      }
    };
    const workers = [worker(), worker(), worker()];
    await f.upstream.waitForRequests(30);
    await f.rotate("rotated-token");
    const before = f.upstream.requests.length;
    const after = await appCall(f, "GET", "/version");
    assert.equal(after.status, 200);
    const afterSwap = f.upstream.requests.slice(before);
    assert.ok(afterSwap.length > 0);
    // Every request the proxy received after the swap completed carries the
    // new token (requests already in flight may carry either).
    assert.equal(
      f.upstream.requests.at(-1)!.headers.authorization,
      "Bearer rotated-token",
    );
    await f.upstream.waitForRequests(before + 30);
    stop = true;
    await Promise.all(workers);
    assert.equal(failures, 0);
    assert.ok(count >= 40, `only ${count} requests completed`);
    const tail = f.upstream.requests.slice(-10);
    for (const r of tail) {
      assert.equal(r.headers.authorization, "Bearer rotated-token");
    }
  } finally {
    agent.destroy();
    await f.close();
  }
});

Deno.test("proxy: a restarted mca is still trusted by the app's loaded ca.crt", async () => {
  const f = await startFixture();
  try {
    const loadedCa = f.appCa();
    await f.restart();
    assert.equal(f.appCa(), loadedCa, "ca.crt is unchanged");
    const answer = await appCall(f, "GET", "/version", { ca: loadedCa });
    assert.equal(answer.status, 200);
    const ready = f.logs.map((l) => JSON.parse(l)).filter((l) =>
      l.msg === "ready"
    );
    assert.deepEqual(ready.map((r) => r.caReused), [false, true]);
  } finally {
    await f.close();
  }
});

Deno.test("proxy: a followed log streams line by line over the back-pressured path", async () => {
  const f = await startFixture();
  try {
    const log = openWatch(
      f,
      "/api/v1/namespaces/team-a/pods/p/log?follow=true",
    );
    await log.head; // the head comes before any line
    await f.upstream.waitForWatches(1);
    f.upstream.pushWatchEvent({ line: 1 });
    await log.until(1); // delivered while the stream is still open
    f.upstream.pushWatchEvent({ line: 2 });
    await log.until(2);
    f.upstream.closeWatches();
    await log.ended;
    assert.deepEqual(log.lines, [{ line: 1 }, { line: 2 }]);
    const seen = f.upstream.requests.find((r) => r.url.includes("/log?"));
    assert.equal(seen?.headers["accept-encoding"], "identity"); // fetch path
  } finally {
    await f.close();
  }
});

Deno.test("proxy: an app that stops reading a busy watch loses it past 16 MiB, and the upstream watch is closed", async () => {
  const f = await startFixture();
  const conn = await openUnreadCall(
    f,
    "/api/v1/namespaces/team-a/configmaps?watch=1",
  );
  try {
    await f.upstream.waitForWatches(1);
    await floodWatches(f.upstream);
    await f.upstream.waitForAborts(1, 20_000);
    await untilLogged(
      f,
      (l) =>
        l.verb === "watch" && /behind on this stream/.test(String(l.error)),
    );
  } finally {
    conn.close();
    await f.close();
  }
});

Deno.test("proxy: a 100 MB object by name read by an app that stops reading is cut past 16 MiB, not held; a reading app gets it whole", async () => {
  const f = await startFixture();
  const path = "/apis/big.example/v1/namespaces/team-a/things/huge";
  const conn = await openUnreadCall(f, `${path}?bytes=${100 * 1024 * 1024}`);
  try {
    await f.upstream.waitForAborts(1, 30_000); // MCA let go of the upstream
    await untilLogged(
      f,
      (l) => l.verb === "get" && /behind on this answer/.test(String(l.error)),
    );
  } finally {
    conn.close();
  }
  try {
    // the node:https path (a GET by name), read at once: all of it
    const size = 40 * 1024 * 1024;
    const got = await appCall(f, "GET", `${path}?bytes=${size}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.length, size);
  } finally {
    await f.close();
  }
});

Deno.test("proxy: keep-alive connections stay usable after watches", async () => {
  const f = await startFixture();
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: f.appCa() });
  function get(path: string): Promise<number> {
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    const req = request(
      { host: "127.0.0.1", port: f.port, path, agent },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end();
    return promise;
  }
  try {
    for (let round = 0; round < 5; round++) {
      const watch = get("/api/v1/namespaces/team-a/configmaps?watch=1");
      await f.upstream.waitForWatches(1);
      f.upstream.pushWatchEvent({ type: "ADDED", object: {} });
      f.upstream.closeWatches();
      assert.equal(await watch, 200);
      for (let i = 0; i < 5; i++) assert.equal(await get("/version"), 200);
    }
  } finally {
    agent.destroy();
    await f.close();
  }
});

Deno.test("proxy: large answers in kube-apiserver's 1.6 KB chunks arrive whole, and the connection stays usable", async () => {
  const f = await startFixture();
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: f.appCa() });
  function get(path: string): Promise<{ status: number; body: Buffer }> {
    const { promise, resolve, reject } = Promise.withResolvers<
      { status: number; body: Buffer }
    >();
    const req = request(
      { host: "127.0.0.1", port: f.port, path, agent },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (c: Buffer) => parts.push(c));
        res.on(
          "end",
          () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(parts),
            }),
        );
      },
    );
    req.on("error", reject);
    req.end();
    return promise;
  }
  try {
    const size = 1024 * 1024 + 7;
    for (const sized of ["", "&length=1"]) {
      const got = await get(`/big?bytes=${size}&chunk=1600${sized}`);
      assert.equal(got.status, 200);
      assert.equal(got.body.length, size);
      assert.equal(JSON.parse(got.body.toString()).kind, "List");
      // the same keep-alive connection carries the next call at once
      assert.equal((await get("/version")).status, 200);
    }
  } finally {
    agent.destroy();
    await f.close();
  }
});

Deno.test("proxy: a call after one with a body is not stalled (pooled upstream socket)", async () => {
  const f = await startFixture();
  try {
    const big = JSON.stringify({ data: "y".repeat(2 * 1024 * 1024) });
    for (const body of ['{"a":1}', big, '{"b":2}']) {
      const posted = await appCall(
        f,
        "POST",
        "/api/v1/namespaces/team-a/configmaps",
        {
          body,
          headers: {
            "content-type": "application/json",
            expect: "100-continue",
          },
        },
      );
      assert.equal(posted.status, 201);
      assert.equal(JSON.parse(posted.text).received, body.length);
      // the pooled upstream socket the POST used must carry this GET at once
      const got = await appCall(f, "GET", "/version");
      assert.equal(got.status, 200);
    }
    for (const r of f.upstream.requests) {
      assert.equal(r.headers.expect, undefined);
    }
  } finally {
    await f.close();
  }
});

Deno.test("proxy: answers without a body (304, 204, HEAD) leave the connection usable", async () => {
  const f = await startFixture();
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: f.appCa() });
  const call = (method: string, path: string): Promise<number> => {
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    const req = request(
      { host: "127.0.0.1", port: f.port, path, method, agent, timeout: 5000 },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on(
      "timeout",
      () => req.destroy(new Error(`${method} ${path} stalled`)),
    );
    req.on("error", reject);
    req.end();
    return promise;
  };
  try {
    for (
      const [method, path, want] of [
        ["GET", "/status/304", 304],
        ["GET", "/version", 200],
        ["GET", "/status/204", 204],
        ["GET", "/version", 200],
        ["HEAD", "/version", 404], // the fake serves GET only
        ["GET", "/version", 200],
      ] as const
    ) {
      assert.equal(await call(method, path), want, `${method} ${path}`);
    }
  } finally {
    agent.destroy();
    await f.close();
  }
});

Deno.test("proxy: upstream down, then back on the same address: calls recover", async () => {
  const f = await startFixture({ connectTimeoutMs: 2000 });
  const port = f.upstream.port;
  let revived: Awaited<ReturnType<typeof startFakeUpstream>> | undefined;
  try {
    assert.equal((await appCall(f, "GET", "/version")).status, 200);
    await f.upstream.close();
    assert.equal((await appCall(f, "GET", "/version")).status, 503);
    revived = await startFakeUpstream({ port });
    const back = await appCall(f, "GET", "/version");
    assert.equal(back.status, 200, back.text);
    assert.equal(
      revived.requests.at(-1)!.headers.authorization,
      `Bearer ${DEFAULT_FAKE_TOKEN}`,
    );
  } finally {
    await f.sidecar.close();
    await revived?.close();
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("proxy: a sized answer arriving in pieces leaves the connection usable", async () => {
  const f = await startFixture();
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: f.appCa() });
  const get = (path: string): Promise<[number, number]> => {
    const { promise, resolve, reject } = Promise.withResolvers<
      [number, number]
    >();
    const req = request({
      host: "127.0.0.1",
      port: f.port,
      path,
      agent,
      timeout: 5000,
    }, (res) => {
      let n = 0;
      res.on("data", (c: Uint8Array) => n += c.length);
      res.on("end", () => resolve([res.statusCode ?? 0, n]));
    });
    req.on("timeout", () => req.destroy(new Error(`${path} stalled`)));
    req.on("error", reject);
    req.end();
    return promise;
  };
  try {
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await get("/split?bytes=20000&gap=5"), [200, 20000]);
      // A stalled answer only comes out when the app's socket times out
      // (5 s here): a bound far above a normal call's time tells them apart.
      const started = performance.now();
      assert.equal((await get("/version"))[0], 200);
      const took = performance.now() - started;
      assert.ok(took < 2500, `the answer after a split one stalled ${took} ms`);
    }
  } finally {
    agent.destroy();
    await f.close();
  }
});

Deno.test("proxy: a request body abandoned by the app never starts an upstream request, or ends it", async () => {
  const f = await startFixture();
  const send = async (head: string, chunk: (n: number) => string) => {
    const app = connect({
      host: "127.0.0.1",
      port: f.port,
      ca: f.appCa(),
      servername: "localhost",
    });
    app.on("error", () => {});
    await new Promise((resolve) => app.once("secureConnect", resolve));
    app.write(head);
    return {
      app,
      chunk: (n: number) => new Promise((r) => app.write(chunk(n), r)),
    };
  };
  try {
    // A sized body is read whole before anything goes upstream: walking
    // away half-way reaches no cluster at all.
    for (const method of ["POST", "GET"]) {
      const path = `/api/v1/namespaces/team-a/configmaps/sized-${method}`;
      const { app, chunk } = await send(
        `${method} ${path} HTTP/1.1\r\nhost: localhost\r\n` +
          "content-type: application/json\r\ncontent-length: 1000000\r\n\r\n",
        (n) => "x".repeat(n),
      );
      for (let i = 0; i < 5; i++) await chunk(20_000);
      app.destroy();
      await untilLogged(
        f,
        (l) => l.path === path && l.error === "client closed the connection",
      );
      assert.ok(!f.upstream.requests.some((r) => r.url === path), method);
      assert.equal(f.upstream.inFlightRequests(), 0, method);
    }
    // A chunked body streams: walking away ends the upstream request too.
    const path = "/api/v1/namespaces/team-a/configmaps/chunked";
    const { app, chunk } = await send(
      `POST ${path} HTTP/1.1\r\nhost: localhost\r\n` +
        "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
      (n) => `${n.toString(16)}\r\n${"y".repeat(n)}\r\n`,
    );
    const deadline = Date.now() + 5000;
    while (f.upstream.inFlightRequests() === 0) {
      assert.ok(Date.now() < deadline, "the request never reached upstream");
      await chunk(20_000);
    }
    app.destroy();
    await untilLogged(f, (l) => l.msg === "api call" && l.path === path);
    const closeBy = Date.now() + 5000;
    while (f.upstream.inFlightRequests() > 0) {
      assert.ok(Date.now() < closeBy, "upstream request left open");
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    await f.close();
  }
});
