/**
 * What one idle TLS connection costs a Deno process, with nothing of MCA in
 * it: this process opens N `node:tls` connections (client side) to a
 * `node:tls` server in a child process (server side), and each side reports
 * its RSS and JS heap growth divided by N. A watch through mca holds one
 * connection of each side, so their sum is the runtime's floor per watch.
 *
 *   deno run -A bench/repro/tls_conn_memory.ts [N] [--shared-context]
 *     [--deno-tls]
 *
 * `--shared-context` gives every client connection one `secureContext`
 * made once (instead of the `ca` option each time, as `agent: false`
 * requests do); `--deno-tls` opens them with `Deno.connectTls` instead, to
 * tell `node:tls`'s own cost from rustls'.
 *
 * @module
 */

import { connect, createSecureContext, createServer } from "node:tls";
import { defaultTestTls } from "../../tests/support/test_certs.ts";

function mem() {
  const s = Deno.readTextFileSync("/proc/self/status");
  const kib = (k: string) => Number(s.match(new RegExp(`${k}:\\s+(\\d+)`))![1]);
  const u = Deno.memoryUsage();
  return {
    rssKiB: kib("VmRSS"),
    heapKiB: Math.round((u.heapTotal + u.external) / 1024),
  };
}

function perConn(a: ReturnType<typeof mem>, b: typeof a, n: number) {
  return {
    rssKiB: Math.round((b.rssKiB - a.rssKiB) / n * 10) / 10,
    heapKiB: Math.round((b.heapKiB - a.heapKiB) / n * 10) / 10,
  };
}

if (Deno.args[0] === "serve") {
  const { cert, key } = JSON.parse(Deno.args[1]);
  let before = mem();
  let baseCount = 0;
  const sockets: unknown[] = [];
  const server = createServer({ cert, key }, (s) => {
    sockets.push(s);
    s.on("error", () => {});
  });
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as { port: number }).port;
    console.log(JSON.stringify({ port }));
  });
  // "base" and "report" commands on stdin, one per line.
  for await (const chunk of Deno.stdin.readable) {
    const cmd = new TextDecoder().decode(chunk).trim();
    if (cmd === "base") {
      before = mem();
      baseCount = sockets.length;
    }
    if (cmd === "report") {
      console.log(JSON.stringify({
        connections: sockets.length - baseCount,
        ...perConn(before, mem(), sockets.length - baseCount),
      }));
      Deno.exit(0);
    }
  }
} else {
  const n = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? 500);
  const shared = Deno.args.includes("--shared-context");
  const denoTls = Deno.args.includes("--deno-tls");
  const tls = defaultTestTls();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "serve",
      JSON.stringify({ cert: tls.server.certPem, key: tls.server.keyPem }),
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  const port = JSON.parse((await lines.read()).value!).port;
  const writer = child.stdin.getWriter();
  const say = (s: string) => writer.write(new TextEncoder().encode(s + "\n"));
  // Warm up both sides (first handshake compiles code), then the baseline.
  const ctx = createSecureContext({ ca: tls.ca.certPem });
  const open = async () => {
    if (denoTls) {
      return await Deno.connectTls({
        hostname: "127.0.0.1",
        port,
        caCerts: [tls.ca.certPem],
      });
    }
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    const s = connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ...(shared ? { secureContext: ctx } : { ca: tls.ca.certPem }),
    }, () => resolve(s));
    s.on("error", reject);
    return await promise;
  };
  const warm = [];
  for (let i = 0; i < 20; i++) warm.push(await open());
  await new Promise((r) => setTimeout(r, 500));
  await say("base");
  const before = mem();
  const kept = [];
  for (let i = 0; i < n; i++) {
    const c = await open();
    if (denoTls) await (c as Deno.TlsConn).handshake();
    kept.push(c);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const client = perConn(before, mem(), n);
  await say("report");
  const server = JSON.parse((await lines.read()).value!);
  console.log(JSON.stringify({
    n,
    client: denoTls
      ? "Deno.connectTls"
      : shared
      ? "node:tls, shared secureContext"
      : "node:tls, ca per connection",
    clientPerConn: client,
    serverPerConn: server,
  }));
  Deno.exit(0);
}
