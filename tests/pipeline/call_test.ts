import assert from "node:assert/strict";
import { connect } from "node:tls";
import {
  appCall,
  rawExchange,
  startFixture,
} from "../support/sidecar_fixture.ts";
import { calls, ROUTING, untilLogged } from "../support/multicluster.ts";
import type { CallStart, Observer } from "../../lib/observe/observer.ts";

/**
 * Regression: a call is decided and served under the routing version in
 * force when it was accepted. Before, the first look used one version and
 * the plan made after reading the body another, so a reload in between
 * could send the call by the new rules (or name a cluster the old
 * registry lacked, answering 503).
 */
Deno.test("pipeline: a reload while a body is read does not change where the call goes", async () => {
  const rule = (cluster: string) =>
    `rules:\n  - {match: {namespaces: [moved], labels: "app=x"}, cluster: ${cluster}}\n`;
  const accepted = Promise.withResolvers<void>();
  const f = await startFixture({
    remotes: ["east", "west"],
    routing: rule("east"),
    observers: [{
      start: () => {
        accepted.resolve();
        return { end: () => {} };
      },
    }],
  });
  try {
    const body = JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c", labels: { app: "x" } },
    });
    const socket = connect({
      host: "127.0.0.1",
      port: f.port,
      ca: f.appCa(),
      servername: "localhost",
    });
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    const chunks: string[] = [];
    socket.on("data", (c) => chunks.push(String(c)));
    const ended = new Promise((resolve) => socket.once("end", resolve));
    socket.write(
      "POST /api/v1/namespaces/moved/configmaps HTTP/1.1\r\n" +
        "host: localhost\r\ncontent-type: application/json\r\n" +
        `content-length: ${body.length}\r\nconnection: close\r\n\r\n` +
        body.slice(0, 10),
    );
    // The call is accepted under the first version; now swap the rules.
    await accepted.promise;
    const tmp = `${f.routingFile}.new`;
    await Deno.writeTextFile(tmp, rule("west"));
    await Deno.rename(tmp, f.routingFile);
    await untilLogged(f, (l) => l.msg === "routing configuration loaded");
    socket.write(body.slice(10));
    await ended;
    assert.match(chunks.join(""), /^HTTP\/1\.1 201/);
    assert.equal(calls(f).at(-1).cluster, "east");
    assert.equal(f.remotes.get("west")!.requests.length, 0);
  } finally {
    await f.close();
  }
});

Deno.test("pipeline: observers see start, decision, each upstream request and the end", async () => {
  const events: string[] = [];
  const observer: Observer = {
    start(call) {
      events.push(`start ${call.info.verb} ${call.traceparent ?? "-"}`);
      return {
        decided: (d) => events.push(`decided ${d.plan} ${d.clusters}`),
        upstream(u) {
          events.push(`upstream ${u.cluster} ${u.target}`);
          return {
            headers: { "x-observer": "1" },
            response: (r) => events.push(`head ${r.status}`),
            failed: (reason) => events.push(`failed ${reason}`),
          };
        },
        end: (e) => events.push(`end ${e.status} ${e.cluster}`),
      };
    },
  };
  const f = await startFixture({
    remotes: ["east", "west"],
    routing: ROUTING,
    observers: [observer],
  });
  try {
    await appCall(f, "GET", "/api/v1/namespaces/other/configmaps/x", {
      headers: {
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      },
    });
    assert.deepEqual(events, [
      "start get 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "decided one local",
      "upstream local /api/v1/namespaces/other/configmaps/x",
      "head 200",
      "end 200 local",
    ]);
    assert.equal(f.upstream.requests.at(-1)!.headers["x-observer"], "1");
    events.length = 0;
    await appCall(f, "GET", "/api/v1/namespaces/spread-1/configmaps");
    assert.equal(events[1], "decided fanout east,west");
    assert.deepEqual(
      events.filter((e) => e.startsWith("upstream")).map((e) => e.split(" ")[1])
        .sort(),
      ["east", "west"],
    );
    assert.equal(events.at(-1), "end 200 east+west");
  } finally {
    await f.close();
  }
});

Deno.test("pipeline: a policy that denies every cluster gets a Forbidden Status", async () => {
  const f = await startFixture({
    remotes: ["east", "west"],
    routing: ROUTING,
    policy: () => ({
      check: ({ cluster }) => ({
        allowed: cluster === "west",
        mode: "enforce",
        rule: cluster === "west" ? undefined : "only-west",
        basis: cluster === "west" ? "default" : "rule",
        reason: "test",
      }),
    }),
  });
  try {
    const refused = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/other/secrets/s",
    );
    assert.equal(refused.status, 403);
    const status = JSON.parse(refused.text);
    assert.equal(status.reason, "Forbidden");
    assert.equal(
      status.message,
      'secrets "s" is forbidden: refused by the MCA call policy of this Pod',
    );
    assert.deepEqual(status.details, { name: "s", kind: "secrets" });
    assert.equal(
      f.upstream.requests.length,
      0,
      "nothing reached the API server",
    );
    assert.equal(calls(f).at(-1).policyRule, "only-west");
    // A merged LIST leaves the denied cluster out and says so.
    const list = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/spread-1/configmaps",
    );
    assert.equal(list.status, 200);
    assert.match(
      String(list.headers.warning ?? ""),
      /cluster east is left out by this Pod's call policy/,
    );
    // so does a paged one (kubectl and client-go always send limit=500)
    const paged = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/spread-1/configmaps?limit=500",
    );
    assert.equal(paged.status, 200);
    assert.match(
      String(paged.headers.warning ?? ""),
      /cluster east is left out by this Pod's call policy/,
    );
    assert.equal(f.remotes.get("east")!.requests.length, 0);
  } finally {
    await f.close();
  }
});

/** Sends raw request bytes over TLS and returns the raw answer. */

Deno.test("pipeline: targets MCA would decide on differently than the API server are refused with 400", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    for (
      const target of [
        "/api/v1/namespaces/%2e%2e/pods",
        "/version/%2e%2e/api/v1/namespaces/app-ns/pods",
        "https://evil.example/api/v1/namespaces/app-ns/pods",
        "/api/v1/namespaces/a%2fb/pods",
      ]
    ) {
      const answer = await rawExchange(
        f.port,
        f.appCa(),
        `GET ${target} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n`,
      );
      assert.match(answer, /^HTTP\/1\.1 400 /, target);
      assert.match(answer, /"reason":"BadRequest"/, target);
      const upgrade = await rawExchange(
        f.port,
        f.appCa(),
        `GET ${target} HTTP/1.1\r\nhost: localhost\r\nconnection: Upgrade\r\n` +
          "upgrade: websocket\r\nsec-websocket-version: 13\r\n" +
          "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      );
      assert.match(upgrade, /^HTTP\/1\.1 400 /, `upgrade ${target}`);
    }
    assert.equal(f.upstream.requests.length, 0);
    for (const remote of f.remotes.values()) {
      assert.equal(remote.requests.length, 0);
    }
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/other/configmaps/x",
    );
    assert.equal(
      answer.status,
      200,
      `local is still healthy and used: ${answer.status} ${answer.text}`,
    );
  } finally {
    await f.close();
  }
});

Deno.test("pipeline: a token file with control characters is refused without echoing it", async () => {
  const f = await startFixture({});
  try {
    const secret = "real-secret-token";
    for (const bad of [`${secret}\r\nx-evil: 1`, `${secret}\u0000x`]) {
      await f.rotate(bad);
      for (
        const path of [
          "/api/v1/namespaces/other/configmaps/x",
          "/version",
          "/api/v1/pods",
        ]
      ) {
        const answer = await appCall(f, "GET", path);
        assert.equal(answer.status, 503, path);
        assert.equal(JSON.parse(answer.text).reason, "ServiceUnavailable");
        assert.ok(!answer.text.includes(secret), `${path}: ${answer.text}`);
      }
    }
    assert.ok(f.logs.length > 0);
    for (const line of f.logs) assert.ok(!line.includes(secret), line);
    assert.match(
      calls(f).at(-1).error,
      /holds characters a bearer token cannot/,
    );
    assert.equal(f.upstream.requests.length, 0);
  } finally {
    await f.close();
  }
});

Deno.test("pipeline: an API server that never answers gets the app a 504 Status, and stays healthy", async () => {
  const f = await startFixture({ headTimeoutMs: 300 });
  try {
    const started = performance.now();
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/hang/configmaps/x",
    );
    assert.equal(answer.status, 504);
    const status = JSON.parse(answer.text);
    assert.equal(status.reason, "Timeout");
    assert.match(status.message, /sent no answer within 300 ms/);
    assert.equal(answer.headers["retry-after"], "1");
    assert.ok(performance.now() - started < 10_000);
    const next = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/other/configmaps/x",
    );
    assert.equal(
      next.status,
      200,
      "the same upstream still serves other calls",
    );
  } finally {
    await f.close();
  }
});

Deno.test("pipeline: a LIST (fetch path) that never gets a head is a 504 too", async () => {
  const f = await startFixture({ headTimeoutMs: 300, connectTimeoutMs: 200 });
  try {
    const answer = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/hang/configmaps",
    );
    assert.equal(answer.status, 504);
    assert.equal(JSON.parse(answer.text).reason, "Timeout");
  } finally {
    await f.close();
  }
});

Deno.test("pipeline: an upgrade the API server never answers gets a 504", async () => {
  const f = await startFixture({ headTimeoutMs: 300 });
  try {
    const answer = await rawExchange(
      f.port,
      f.appCa(),
      "POST /api/v1/namespaces/hang/pods/p/exec?command=ls HTTP/1.1\r\n" +
        "host: localhost\r\nconnection: Upgrade\r\nupgrade: SPDY/3.1\r\n" +
        "x-stream-protocol-version: v4.channel.k8s.io\r\ncontent-length: 0\r\n\r\n",
    );
    assert.match(answer, /^HTTP\/1\.1 504 /);
    assert.match(answer, /"reason":"Timeout"/);
  } finally {
    await f.close();
  }
});

Deno.test("pipeline: an upgrade to an API server that is down gets a 503 Status with Retry-After", async () => {
  const f = await startFixture({ connectTimeoutMs: 2000 });
  try {
    await f.upstream.close();
    const answer = await rawExchange(
      f.port,
      f.appCa(),
      "POST /api/v1/namespaces/a/pods/p/exec?command=ls HTTP/1.1\r\n" +
        "host: localhost\r\nconnection: Upgrade\r\nupgrade: SPDY/3.1\r\n" +
        "x-stream-protocol-version: v4.channel.k8s.io\r\ncontent-length: 0\r\n\r\n",
    );
    assert.match(answer, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(answer, /\r\nretry-after: 1\r\n/);
    assert.match(answer, /\r\nconnection: close\r\n/);
    const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4));
    assert.equal(body.kind, "Status");
    assert.equal(body.reason, "ServiceUnavailable");
    assert.match(body.message, /is unreachable/);
  } finally {
    await f.close();
  }
});

Deno.test("pipeline: logs (read to their end or followed) and proxy reads take the back-pressured fetch path", async () => {
  const f = await startFixture();
  try {
    const paths = [
      "/api/v1/namespaces/a/pods/p/log?container=app",
      "/api/v1/namespaces/a/services/s:80/proxy/metrics",
      "/api/v1/namespaces/a/pods/p/log?follow=true&limit=1",
      "/api/v1/namespaces/a/configmaps/c",
    ];
    for (const path of paths) {
      const call = appCall(f, "GET", path);
      if (path.includes("follow=true")) {
        await f.upstream.waitForWatches(1); // a stream: end it
        f.upstream.closeWatches();
      }
      await call;
    }
    const seen = (path: string) =>
      f.upstream.requests.find((r) => r.url === path)?.headers[
        "accept-encoding"
      ];
    // The fetch path asks for identity when the app sent no Accept-Encoding.
    assert.equal(seen(paths[0]), "identity", "log without follow");
    assert.equal(seen(paths[1]), "identity", "proxy subresource");
    assert.equal(seen(paths[2]), "identity", "followed log");
    assert.equal(seen(paths[3]), undefined, "one object: node:https path");
  } finally {
    await f.close();
  }
});

Deno.test("pipeline: observers are told the raw request-target and the app's address", async () => {
  const starts: CallStart[] = [];
  const f = await startFixture({
    observers: [{
      start: (call) => {
        starts.push(call);
        return { end() {} };
      },
    }],
  });
  try {
    await appCall(
      f,
      "GET",
      "/api/v1/namespaces/a/configmaps?limit=5&labelSelector=x%3Dy",
    );
    const seen = starts.at(-1);
    assert.equal(
      seen?.target,
      "/api/v1/namespaces/a/configmaps?limit=5&labelSelector=x%3Dy",
    );
    assert.match(
      seen?.remoteAddr ?? "",
      /^(127\.0\.0\.1|::ffff:127\.0\.0\.1)$/,
    );
  } finally {
    await f.close();
  }
});
