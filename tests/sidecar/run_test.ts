import assert from "node:assert/strict";
import { createServer } from "node:net";
import { join } from "node:path";
import { startSidecar } from "../../lib/sidecar/run.ts";
import { writeProjectedVolume } from "../support/cluster.ts";
import {
  DEFAULT_FAKE_TOKEN,
  startFakeUpstream,
} from "../support/fake_upstream.ts";

const TMP = new URL("../../tmp/", import.meta.url).pathname;
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function tempDir(prefix: string): Promise<string> {
  await Deno.mkdir(TMP, { recursive: true });
  return await Deno.makeTempDir({ dir: TMP, prefix });
}

Deno.test("sidecar: start-up failures are clear and leave nothing behind", async () => {
  const dir = await tempDir("sidecar-bad-");
  const upstream = await startFakeUpstream();
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
  const busyPort = (blocker.address() as { port: number }).port;
  try {
    const base = {
      saDir: join(dir, "real"),
      mcaSaDir: join(dir, "app"),
      stateDir: join(dir, "state"),
      hosts: ["127.0.0.1"],
      port: 0,
      log: () => {},
      env: {
        KUBERNETES_SERVICE_HOST: "127.0.0.1",
        KUBERNETES_SERVICE_PORT: String(upstream.port),
        HOME: join(dir, "home"),
      },
    };
    await assert.rejects(() => startSidecar(base), /no upstream API server/);
    await writeProjectedVolume(base.saDir, {
      token: DEFAULT_FAKE_TOKEN,
      "ca.crt": upstream.caPem,
      namespace: "ns",
    });
    await assert.rejects(
      () => startSidecar({ ...base, port: busyPort }),
      /cannot listen on port/,
    );
    // the app directory cannot be made: refuse, and free the port again
    await Deno.writeTextFile(join(dir, "file"), "");
    await assert.rejects(
      () => startSidecar({ ...base, mcaSaDir: join(dir, "file", "sa") }),
      /cannot create .*file\/sa.*--mca-sa-dir/,
    );
    const ok = await startSidecar(base);
    await ok.close();
  } finally {
    blocker.close();
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sidecar: `mca` runs as a process, logs JSON and stops on SIGTERM", async () => {
  const dir = await tempDir("sidecar-cli-");
  const upstream = await startFakeUpstream();
  try {
    await writeProjectedVolume(join(dir, "real"), {
      token: DEFAULT_FAKE_TOKEN,
      "ca.crt": upstream.caPem,
      namespace: "ns",
    });
    await Deno.mkdir(join(dir, "app"));
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        `--sa-dir=${join(dir, "real")}`,
        `--mca-sa-dir=${join(dir, "app")}`,
        `--state-dir=${join(dir, "state")}`,
        "--listen=127.0.0.1",
        "--port=0",
        "--metrics-port=0",
      ],
      env: {
        KUBERNETES_SERVICE_HOST: "127.0.0.1",
        KUBERNETES_SERVICE_PORT: String(upstream.port),
      },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const ready = JSON.parse(text.split("\n")[0]);
    assert.equal(ready.msg, "ready");
    assert.match(ready.upstream, /in-cluster/);
    assert.ok(!text.includes(DEFAULT_FAKE_TOKEN));
    child.kill("SIGTERM");
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const status = await child.status;
    await child.stderr.cancel();
    assert.equal(status.code, 0);
    assert.match(text, /"msg":"stopped"/);
  } finally {
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});
