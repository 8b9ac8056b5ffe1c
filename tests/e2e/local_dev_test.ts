/**
 * The laptop mode README promises: `mca` with a kubeconfig (no service
 * account), a real API server behind it, and kubectl pointed at `mca` with
 * the CA it wrote and a made-up token.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startCluster } from "../support/cluster.ts";
import { type LocalMca, startLocalMca } from "../support/local_mca.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("local development: mca on a kubeconfig serves kubectl with the context's identity", async () => {
  await Deno.mkdir(join(ROOT, "tmp"), { recursive: true });
  const dir = await Deno.makeTempDir({
    dir: join(ROOT, "tmp"),
    prefix: "local-dev-",
  });
  const cluster = await startCluster({ dir: join(dir, "cluster") });
  let mca: LocalMca | undefined;
  try {
    const token = await cluster.mintToken();
    mca = await startLocalMca(cluster, { dir, token });
    assert.match(mca.ready.upstream, /kubeconfig .* \(context dev/);
    const port = mca.port;
    const kubectl = (args: string[]) =>
      new Deno.Command(cluster.bin.kubectl, {
        args: [
          `--server=https://127.0.0.1:${port}`,
          `--certificate-authority=${mca!.caFile}`,
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
    const { code, output } = await mca.stop();
    assert.equal(code, 0);
    assert.ok(
      !output.includes(token),
      "the kubeconfig's token never reaches the log",
    );
  } finally {
    await mca?.kill();
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
