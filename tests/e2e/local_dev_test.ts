/**
 * The laptop mode README promises: `mca` with a kubeconfig (no service
 * account), a real API server behind it, and kubectl pointed at `mca` with
 * the CA it wrote and a made-up token.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startCluster } from "../support/cluster.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("local development: mca on a kubeconfig serves kubectl with the context's identity", async () => {
  await Deno.mkdir(join(ROOT, "tmp"), { recursive: true });
  const dir = await Deno.makeTempDir({
    dir: join(ROOT, "tmp"),
    prefix: "local-dev-",
  });
  const cluster = await startCluster({ dir: join(dir, "cluster") });
  let mca: Deno.ChildProcess | undefined;
  try {
    const token = await cluster.mintToken();
    const kubeconfig = join(dir, "kubeconfig");
    await Deno.writeTextFile(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{
          name: "c",
          cluster: {
            server: cluster.url,
            "certificate-authority": cluster.caFile,
          },
        }],
        users: [{ name: "u", user: { token } }],
        contexts: [{
          name: "dev",
          context: { cluster: "c", user: "u", namespace: cluster.namespace },
        }],
        "current-context": "dev",
      }),
    );
    mca = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        join(ROOT, "main.ts"),
        `--kubeconfig=${kubeconfig}`,
        `--mca-sa-dir=${join(dir, "sa")}`,
        `--state-dir=${join(dir, "state")}`,
        "--listen=127.0.0.1",
        "--port=0",
        "--metrics-port=0",
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = mca.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`mca exited before ready: ${text}`);
      text += value;
    }
    const ready = JSON.parse(text.split("\n")[0]);
    assert.match(ready.upstream, /kubeconfig .* \(context dev/);
    const port = ready.listen[0].split(":").at(-1);
    const kubectl = (args: string[]) =>
      new Deno.Command(cluster.bin.kubectl, {
        args: [
          `--server=https://127.0.0.1:${port}`,
          `--certificate-authority=${join(dir, "sa", "ca.crt")}`,
          "--token=anything",
          `--cache-dir=${join(dir, "kubectl-cache")}`,
          ...args,
        ],
      }).output();
    const whoami = await kubectl(["auth", "whoami", "-o", "json"]);
    assert.equal(whoami.code, 0, new TextDecoder().decode(whoami.stderr));
    const review = JSON.parse(new TextDecoder().decode(whoami.stdout));
    assert.equal(
      review.status.userInfo.username,
      `system:serviceaccount:${cluster.namespace}:${cluster.serviceAccount}`,
    );
    const list = await kubectl([
      "get",
      "configmaps",
      "-n",
      cluster.namespace,
      "-o",
      "name",
    ]);
    assert.equal(list.code, 0, new TextDecoder().decode(list.stderr));
    assert.match(
      new TextDecoder().decode(list.stdout),
      /configmap\/kube-root-ca.crt/,
    );
    const forbidden = await kubectl([
      "get",
      "secrets",
      "-n",
      cluster.namespace,
    ]);
    assert.notEqual(forbidden.code, 0);
    assert.match(new TextDecoder().decode(forbidden.stderr), /Forbidden/);
    mca.kill("SIGTERM");
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    assert.equal((await mca.status).code, 0);
    mca = undefined;
    assert.ok(
      !text.includes(token),
      "the kubeconfig's token never reaches the log",
    );
  } finally {
    if (mca) {
      mca.kill("SIGKILL");
      await mca.status;
      await mca.stdout.cancel().catch(() => {});
    }
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
