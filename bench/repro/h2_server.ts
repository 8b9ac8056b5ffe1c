/**
 * A stand-alone TLS server (no MCA code) to learn whether Deno's HTTP/2 can
 * carry what MCA needs: a small JSON GET, a watch-like answer written every
 * 100 ms, and HTTP/1.1 upgrades with raw socket takeover (SPDY/WebSocket for
 * exec/attach/port-forward). `bench/repro/h2_load.ts` loads it.
 *
 *   deno run -A bench/repro/h2_server.ts --mode h2|h2h1|h1|alpn|deno \
 *     --cert c.pem --key k.pem [--port 0]
 *
 * Modes: `h2` `node:http2.createSecureServer`; `h2h1` the same with
 * `allowHTTP1: true`; `h2stream` http2's `stream` API instead of the compat
 * one; `h1` `node:https.createServer` (what MCA uses);
 * `alpn` one `node:tls` listener handing each socket to an http2 or an
 * https server by its negotiated `alpnProtocol`; `deno` `Deno.serve` with TLS.
 * Prints `{"ready":port}` on stdout when listening.
 *
 * Routes: `GET /json` small JSON; `GET /watch` a line at once and then every
 * 100 ms until the client goes; an upgrade request gets `101` and then an echo of its bytes.
 *
 * @module
 */

import * as http2 from "node:http2";
import * as https from "node:https";
import * as tls from "node:tls";
import type { Duplex } from "node:stream";
import { parseArgs } from "node:util";

const flags = parseArgs({
  args: Deno.args,
  options: {
    mode: { type: "string", default: "h2" },
    cert: { type: "string" },
    key: { type: "string" },
    port: { type: "string", default: "0" },
  },
}).values;
const cert = Deno.readTextFileSync(String(flags.cert));
const key = Deno.readTextFileSync(String(flags.key));
const BODY = JSON.stringify({
  kind: "ConfigMap",
  apiVersion: "v1",
  metadata: { name: "bench", namespace: "default", resourceVersion: "1" },
  data: { a: "x".repeat(200) },
});

interface Res {
  writeHead(code: number, headers: Record<string, string>): unknown;
  write(chunk: string): unknown;
  end(chunk?: string): unknown;
  on(event: "close", fn: () => void): unknown;
}

/** A watch-like answer: one event at once, then one every 100 ms. */
function events(out: Pick<Res, "write" | "on">): void {
  let n = 0;
  const event = () =>
    out.write(JSON.stringify({ type: "MODIFIED", n: n++ }) + "\n");
  event();
  const timer = setInterval(event, 100);
  out.on("close", () => clearInterval(timer));
}

/** The compat-API handler shared by node:https and node:http2. */
function handle(req: { url?: string }, res: Res): void {
  if (req.url?.startsWith("/watch")) {
    res.writeHead(200, { "content-type": "application/json" });
    return events(res);
  }
  res.writeHead(200, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(BODY)),
  });
  res.end(BODY);
}

/** Raw takeover after an HTTP/1.1 upgrade: 101, then echo. */
function upgrade(req: { headers: Record<string, unknown> }, socket: Duplex) {
  const proto = String(req.headers["upgrade"] ?? "SPDY/3.1");
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n` +
      `Upgrade: ${proto}\r\n\r\n`,
  );
  socket.on("data", (d) => socket.write(d));
  socket.on("error", () => socket.destroy());
}

function ready(port: number): void {
  console.log(JSON.stringify({ ready: port, pid: Deno.pid }));
}

interface Listening {
  listen(port: number, host: string, then: () => void): unknown;
  address(): unknown;
}

function listen(server: Listening): void {
  server.listen(Number(flags.port), "127.0.0.1", () => {
    ready((server.address() as { port: number }).port);
  });
}

function startAlpn(): void {
  const h2 = http2.createServer({}, handle as never);
  const h1 = https.createServer({ cert, key }, handle as never);
  h1.on("upgrade", upgrade as never);
  const front = tls.createServer({
    cert,
    key,
    ALPNProtocols: ["h2", "http/1.1"],
  }, (socket) => {
    const to = socket.alpnProtocol === "h2" ? h2 : h1;
    // https's own connection listener expects a TLS socket already secured.
    to.emit(
      socket.alpnProtocol === "h2" ? "connection" : "secureConnection",
      socket,
    );
  });
  listen(front as never);
}

/** The same answers through http2's core API (`stream` events, no compat layer). */
function startStreamApi(): void {
  const server = http2.createSecureServer({ cert, key });
  server.on("stream", (stream: http2.ServerHttp2Stream, headers) => {
    stream.on("error", () => {});
    if (String(headers[":path"]).startsWith("/watch")) {
      stream.respond({ ":status": 200, "content-type": "application/json" });
      return events(stream);
    }
    stream.respond({
      ":status": 200,
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(BODY)),
    });
    stream.end(BODY);
  });
  server.on("sessionError", () => {});
  listen(server as never);
}

function startDeno(): void {
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: Number(flags.port),
    cert,
    key,
    onListen: (addr) => ready(addr.port),
  }, (req) => {
    const url = new URL(req.url);
    if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(e.data);
      return response;
    }
    if (url.pathname.startsWith("/watch")) {
      let timer: ReturnType<typeof setInterval> | undefined;
      let n = 0;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          const event = () =>
            c.enqueue(
              new TextEncoder().encode(
                JSON.stringify({ type: "MODIFIED", n: n++ }) + "\n",
              ),
            );
          event();
          timer = setInterval(event, 100);
        },
        cancel() {
          clearInterval(timer);
        },
      });
      return new Response(body, {
        headers: { "content-type": "application/json" },
      });
    }
    return new Response(BODY, {
      headers: { "content-type": "application/json" },
    });
  });
  void server;
}

const mode = String(flags.mode);
if (mode === "h2" || mode === "h2h1") {
  const server = http2.createSecureServer(
    { cert, key, allowHTTP1: mode === "h2h1" },
    handle as never,
  );
  server.on("upgrade", upgrade as never);
  server.on("sessionError", () => {});
  listen(server as never);
} else if (mode === "h2stream") {
  startStreamApi();
} else if (mode === "h1") {
  const server = https.createServer({ cert, key }, handle as never);
  server.on("upgrade", upgrade as never);
  listen(server as never);
} else if (mode === "alpn") {
  startAlpn();
} else if (mode === "deno") {
  startDeno();
} else {
  throw new Error(
    `--mode ${mode}: expected h2, h2h1, h2stream, h1, alpn or deno`,
  );
}
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
