import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { prepareCertificates } from "../../lib/sidecar/certs.ts";
import { READY_PATH, runProbe } from "../../lib/sidecar/probe.ts";

const ROOT = new URL("../../tmp/", import.meta.url).pathname;
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function listen(server: Server): Promise<number> {
  const { promise, resolve } = Promise.withResolvers<void>();
  server.listen(0, "127.0.0.1", () => resolve());
  await promise;
  return (server.address() as AddressInfo).port;
}

async function close(server: Server): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  server.close(() => resolve());
  server.closeAllConnections();
  await promise;
}

Deno.test("probe: ready only with the files in place and a verified TLS answer", async () => {
  const dir = await Deno.makeTempDir({ dir: ROOT, prefix: "probe-" });
  const certs = await prepareCertificates(`${dir}`);
  const sa = `${dir}/sa`;
  await Deno.mkdir(sa);
  const server = createServer(
    { cert: certs.server.certPem, key: certs.server.keyPem },
    (req, res) => {
      res.statusCode = req.url === READY_PATH ? 200 : 404;
      res.end();
    },
  );
  const port = await listen(server);
  const opts = { saDir: sa, port, timeoutMs: 2000 };
  try {
    assert.match((await runProbe(opts)).reason, /ca.crt is missing/);
    await Deno.writeTextFile(`${sa}/ca.crt`, certs.ca.certPem);
    await Deno.writeTextFile(`${sa}/token`, "");
    await Deno.writeTextFile(`${sa}/namespace`, "ns");
    assert.match((await runProbe(opts)).reason, /token is empty/);
    await Deno.writeTextFile(`${sa}/token`, "placeholder");
    assert.deepEqual(await runProbe(opts), { ok: true, reason: "ready" });

    // the ca.crt written must be the one that verifies the server
    const other = await prepareCertificates(`${dir}/other`);
    await Deno.writeTextFile(`${sa}/ca.crt`, other.ca.certPem);
    const wrong = await runProbe(opts);
    assert.equal(wrong.ok, false);
    assert.match(wrong.reason, /certificate/i);
  } finally {
    await close(server);
  }
  const down = await runProbe({ saDir: sa, port, timeoutMs: 2000 });
  assert.equal(down.ok, false);
  assert.match(down.reason, /ECONNREFUSED|refused/i);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("probe: `mca --probe` exits 1 with the reason when not ready", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "--probe",
      `--mca-sa-dir=${ROOT}no-such-sa-dir`,
      "--port=1",
      "--timeout-ms=500",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  assert.match(
    new TextDecoder().decode(out.stderr),
    /^mca: not ready: .*missing/,
  );
});
