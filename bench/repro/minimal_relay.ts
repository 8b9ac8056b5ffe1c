/**
 * The smallest relay Deno can be: a `node:https` server that forwards each
 * request with `https.request` over one keep-alive agent and pipes the answer
 * back, nothing else (no log, no routing, no token swap beyond one header).
 * It takes mca's command line, so `bench/profile.ts --main` drives it like
 * mca and its CPU per request is what Deno itself costs for the same work:
 *
 *   deno run -A bench/profile.ts --main bench/repro/minimal_relay.ts \
 *     --workload GET -c 1 --seconds 5 --no-prof [--rtt 5]
 *
 * Flags read: --sa-dir (token, ca.crt of the upstream), --mca-sa-dir (its
 * own ca.crt is written there), --listen, --port; KUBERNETES_SERVICE_HOST and
 * _PORT name the upstream. Other flags are ignored.
 *
 * @module
 */

import { Agent, createServer, request } from "node:https";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { defaultTestTls } from "../../tests/support/test_certs.ts";

const flags = parseArgs({
  args: Deno.args,
  strict: false,
  options: {
    "sa-dir": { type: "string" },
    "mca-sa-dir": { type: "string" },
    listen: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
  },
}).values;
const saDir = String(flags["sa-dir"]);
const token = Deno.readTextFileSync(join(saDir, "token")).trim();
const upstreamCa = Deno.readTextFileSync(join(saDir, "ca.crt"));
const host = Deno.env.get("KUBERNETES_SERVICE_HOST") ?? "127.0.0.1";
const upstreamPort = Number(Deno.env.get("KUBERNETES_SERVICE_PORT"));
const agent = new Agent({ keepAlive: true, ca: upstreamCa });
const tls = defaultTestTls();
const mcaSa = String(flags["mca-sa-dir"]);
Deno.mkdirSync(mcaSa, { recursive: true });
Deno.writeTextFileSync(join(mcaSa, "ca.crt"), tls.ca.certPem);

const server = createServer(
  { cert: tls.server.certPem, key: tls.server.keyPem },
  (req, res) => {
    const headers = { ...req.headers, authorization: `Bearer ${token}` };
    delete headers.host;
    const up = request({
      host,
      port: upstreamPort,
      method: req.method,
      path: req.url,
      headers,
      agent,
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on("error", (e) => {
      res.writeHead(502);
      res.end(String(e));
    });
    req.pipe(up);
  },
);
server.listen(Number(flags.port), String(flags.listen), () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  console.log(
    JSON.stringify({ msg: "ready", listen: [`${flags.listen}:${port}`] }),
  );
});
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
