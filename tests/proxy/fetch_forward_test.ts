import assert from "node:assert/strict";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  request,
  type ServerResponse,
} from "node:http";
import { Agent, createServer as createHttpsServer } from "node:https";
import { createServer as createTcpServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { forwardFetch, splitWarnings } from "../../lib/proxy/fetch_forward.ts";
import { respondFailure } from "../../lib/proxy/failure.ts";
import type { Outcome } from "../../lib/proxy/exchange.ts";
import { defaultTestTls } from "../support/test_certs.ts";

const tls = defaultTestTls();

interface Upstream {
  url: URL;
  seen: IncomingMessage[];
  close(): Promise<void>;
}

async function upstream(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Upstream> {
  const seen: IncomingMessage[] = [];
  const server = createHttpsServer(
    { key: tls.server.keyPem, cert: tls.server.certPem },
    (req, res) => {
      seen.push(req);
      handler(req, res);
    },
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`https://localhost:${port}`),
    seen,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A loopback server that accepts TCP and never says a word. */
async function blackhole(): Promise<Upstream> {
  const sockets: Socket[] = [];
  const server = createTcpServer((s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`https://localhost:${port}`),
    seen: [],
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Answer {
  status: number;
  rawHeaders: string[];
  body: string;
  outcome: Outcome;
}

/** Sends one app call through `forwardFetch` to `to`, as the pipeline does. */
async function call(
  to: URL,
  options: {
    path?: string;
    headers?: Record<string, string>;
    connectTimeoutMs?: number;
    headTimeoutMs?: number;
  } = {},
): Promise<Answer> {
  const client = Deno.createHttpClient({
    caCerts: [tls.ca.certPem],
    http1: true,
    http2: false,
  });
  const agent = new Agent({ ca: tls.ca.certPem });
  let outcome!: Outcome;
  const front = createHttpServer(async (req, res) => {
    outcome = await forwardFetch(req, res, {
      url: to,
      auth: { agent, tls: { ca: tls.ca.certPem }, client },
      client,
      connectTimeoutMs: options.connectTimeoutMs ?? 2000,
      headTimeoutMs: options.headTimeoutMs,
    });
    if (outcome.failure) respondFailure(res, outcome.failure);
  });
  await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
  const { port } = front.address() as AddressInfo;
  try {
    const { promise, resolve, reject } = Promise.withResolvers<Answer>();
    const req = request({
      host: "127.0.0.1",
      port,
      path: options.path ?? "/api/v1/pods",
      headers: options.headers ?? {},
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => body += c);
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          rawHeaders: res.rawHeaders,
          body,
          outcome,
        }));
    });
    req.on("error", reject);
    req.end();
    return await promise;
  } finally {
    front.closeAllConnections();
    await new Promise((r) => front.close(r));
    agent.destroy();
    client.close();
  }
}

function fields(raw: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i].toLowerCase() === name) out.push(raw[i + 1]);
  }
  return out;
}

Deno.test("fetch path: an answer with 120 header lines reaches the app whole", async () => {
  const up = await upstream((_req, res) => {
    const headers: string[] = [];
    for (let i = 0; i < 120; i++) headers.push(`x-h${i}`, `v${i}`);
    res.writeHead(200, [...headers, "content-type", "application/json"]);
    res.end('{"kind":"PodList","items":[]}');
  });
  try {
    const answer = await call(up.url);
    assert.equal(answer.status, 200);
    assert.equal(answer.body, '{"kind":"PodList","items":[]}');
    assert.deepEqual(fields(answer.rawHeaders, "x-h119"), ["v119"]);
    assert.equal(
      answer.rawHeaders.filter((_, i) => i % 2 === 0 && /^x-h/.test(_)).length,
      120,
    );
  } finally {
    await up.close();
  }
});

Deno.test("fetch path: repeated Warning fields stay separate fields", async () => {
  const up = await upstream((_req, res) => {
    res.writeHead(200, [
      "Warning",
      '299 - "first, with a comma"',
      "Warning",
      '299 - "a \\"quoted\\" second"',
      "content-type",
      "application/json",
    ]);
    res.end("{}");
  });
  try {
    const answer = await call(up.url);
    assert.deepEqual(fields(answer.rawHeaders, "warning"), [
      '299 - "first, with a comma"',
      '299 - "a \\"quoted\\" second"',
    ]);
  } finally {
    await up.close();
  }
});

Deno.test("fetch path: no Accept-Encoding from the app means identity upstream", async () => {
  const up = await upstream((_req, res) => res.end("{}"));
  try {
    await call(up.url);
    assert.equal(up.seen[0].headers["accept-encoding"], "identity");
    await call(up.url, { headers: { "accept-encoding": "gzip" } });
    assert.equal(up.seen[1].headers["accept-encoding"], "gzip");
  } finally {
    await up.close();
  }
});

Deno.test("fetch path: fetch's own Accept, Accept-Language and User-Agent never reach the upstream", async () => {
  const up = await upstream((_req, res) => res.end("{}"));
  try {
    await call(up.url); // the app sent none of the three
    const sent = up.seen[0].headers;
    for (const name of ["accept", "accept-language", "user-agent"]) {
      // empty is what Go's Header.Get (kube-apiserver) reads for absent too
      assert.equal(sent[name] ?? "", "", `${name}: ${sent[name]}`);
    }
    const app = {
      accept: "application/json",
      "accept-language": "de",
      "user-agent": "kubectl/v1.34.4",
    };
    await call(up.url, { headers: app });
    for (const [name, value] of Object.entries(app)) {
      assert.equal(up.seen[1].headers[name], value);
    }
  } finally {
    await up.close();
  }
});

Deno.test("fetch path: an upstream that accepts TCP and never speaks TLS fails within the connect timeout", async () => {
  const hole = await blackhole();
  try {
    const started = performance.now();
    const answer = await call(hole.url, {
      connectTimeoutMs: 300,
      headTimeoutMs: 60_000,
    });
    const took = performance.now() - started;
    assert.equal(answer.status, 503);
    assert.equal(answer.outcome.failure?.kind, "unreachable");
    assert.equal(answer.outcome.unreachable, true);
    assert.match(
      JSON.parse(answer.body).message,
      /no TLS connection within 300 ms/,
    );
    assert.ok(took < 30_000, `took ${took} ms, the head bound is 60 s`);
  } finally {
    await hole.close();
  }
});

Deno.test("fetch path: a reachable upstream slower than the connect timeout is waited for", async () => {
  const up = await upstream((_req, res) => {
    setTimeout(() => res.end('{"slow":true}'), 900);
  });
  try {
    const answer = await call(up.url, { connectTimeoutMs: 200 });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, '{"slow":true}');
    assert.equal(answer.outcome.failure, undefined);
  } finally {
    await up.close();
  }
});

Deno.test("splitWarnings: commas inside quoted text do not split", () => {
  assert.deepEqual(splitWarnings('299 - "a, b", 299 - "c"'), [
    '299 - "a, b"',
    '299 - "c"',
  ]);
  assert.deepEqual(splitWarnings('299 - "x \\", y"'), ['299 - "x \\", y"']);
  assert.deepEqual(splitWarnings('299 - "one"'), ['299 - "one"']);
  assert.deepEqual(splitWarnings(""), []);
});
