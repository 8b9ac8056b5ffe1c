/**
 * Checks the real-cluster test support (tests/support/cluster.ts) against a
 * real kube-apiserver: ServiceAccount tokens, RBAC, the kubelet-style
 * service-account directory and clean shutdown. The first run on a machine
 * builds the toolchain (several minutes); later runs start in seconds.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Cluster,
  ensureToolchain,
  startCluster,
} from "../support/cluster.ts";

const TMP_DIR = fileURLToPath(new URL("../../tmp/", import.meta.url));

Deno.test("real cluster: tokens, RBAC, service-account dir, shutdown", async (t) => {
  await ensureToolchain();
  const dir = join(
    TMP_DIR,
    `e2e-cluster-test-${crypto.randomUUID().slice(0, 8)}`,
  );
  const started = performance.now();
  const cluster = await startCluster({ dir });
  console.error(
    `cluster ready in ${
      Math.round(performance.now() - started)
    } ms at ${cluster.url} (${dir})`,
  );
  let passed = false;
  try {
    await t.step(
      "a minted token authenticates as the ServiceAccount",
      async () => {
        const token = await cluster.mintToken();
        const whoami = await kubectlWithToken(cluster, token, [
          "auth",
          "whoami",
          "-o",
          "json",
        ]);
        assert.equal(whoami.code, 0, whoami.stderr);
        const review = JSON.parse(whoami.stdout);
        assert.equal(
          review.status.userInfo.username,
          "system:serviceaccount:mca-e2e:app",
        );
        assert.equal(
          cluster.serviceAccountUser,
          "system:serviceaccount:mca-e2e:app",
        );
      },
    );

    await t.step("the Role allows configmaps but not secrets", async () => {
      const token = await cluster.mintToken();
      const configmaps = await kubectlWithToken(cluster, token, [
        "get",
        "configmaps",
        "-n",
        "mca-e2e",
        "-o",
        "name",
      ]);
      assert.equal(configmaps.code, 0, configmaps.stderr);
      assert.match(configmaps.stdout, /configmap\/kube-root-ca\.crt/);

      const secrets = await kubectlWithToken(cluster, token, [
        "get",
        "secrets",
        "-n",
        "mca-e2e",
      ]);
      assert.notEqual(secrets.code, 0);
      assert.match(secrets.stderr, /Forbidden/);
      assert.match(secrets.stderr, /cannot list resource "secrets"/);
    });

    await t.step(
      "the default namespace set-up came from kube-controller-manager",
      async () => {
        const sa = await cluster.kubectl([
          "get",
          "serviceaccount",
          "default",
          "-n",
          "mca-e2e",
        ], {
          check: false,
        });
        assert.equal(sa.code, 0, sa.stderr);
        const ca = await cluster.kubectl([
          "get",
          "configmap",
          "kube-root-ca.crt",
          "-n",
          "mca-e2e",
          "-o",
          "jsonpath={.data.ca\\.crt}",
        ]);
        assert.equal(
          ca.stdout.trim(),
          (await Deno.readTextFile(cluster.caFile)).trim(),
        );
      },
    );

    await t.step(
      "SelfSubjectReview is allowed by default (system:basic-user)",
      async () => {
        const canI = await cluster.kubectl([
          "auth",
          "can-i",
          "create",
          "selfsubjectreviews.authentication.k8s.io",
          `--as=${cluster.serviceAccountUser}`,
        ], { check: false });
        assert.equal(canI.stdout.trim(), "yes", canI.stderr);
      },
    );

    const saDir = join(dir, "serviceaccount");
    await t.step(
      "writeServiceAccountDir lays out a kubelet projected volume",
      async () => {
        const token = await cluster.writeServiceAccountDir(saDir);
        const data = await Deno.readLink(join(saDir, "..data"));
        assert.match(data, /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$/);
        assert.ok((await Deno.stat(join(saDir, data))).isDirectory);
        for (const name of ["token", "ca.crt", "namespace"]) {
          assert.ok(
            (await Deno.lstat(join(saDir, name))).isSymlink,
            `${name} is a symlink`,
          );
          assert.equal(
            await Deno.readLink(join(saDir, name)),
            `..data/${name}`,
          );
          assert.ok(
            (await Deno.lstat(join(saDir, data, name))).isFile,
            `${name} is a file`,
          );
        }
        assert.equal(await Deno.readTextFile(join(saDir, "token")), token);
        assert.doesNotMatch(token, /\s/);
        assert.equal(
          await Deno.readTextFile(join(saDir, "namespace")),
          "mca-e2e",
        );
        assert.equal(
          await Deno.readTextFile(join(saDir, "ca.crt")),
          await Deno.readTextFile(cluster.caFile),
        );
        const entries = await listNames(saDir);
        assert.deepEqual(
          entries,
          [data, "..data", "ca.crt", "namespace", "token"].sort(),
        );

        const whoami = await kubectlWithToken(cluster, token, [
          "auth",
          "whoami",
          "-o",
          "json",
        ]);
        assert.equal(whoami.code, 0, whoami.stderr);
      },
    );

    await t.step("rotateToken swaps ..data to a new generation", async () => {
      const before = await Deno.readTextFile(join(saDir, "token"));
      const oldData = await Deno.readLink(join(saDir, "..data"));
      const rotated = await cluster.rotateToken(saDir);
      const after = await Deno.readTextFile(join(saDir, "token"));
      assert.notEqual(after, before);
      assert.equal(after, rotated);
      const newData = await Deno.readLink(join(saDir, "..data"));
      assert.notEqual(newData, oldData);
      assert.deepEqual(
        await listNames(saDir),
        [newData, "..data", "ca.crt", "namespace", "token"].sort(),
      );
      assert.equal(
        await Deno.readTextFile(join(saDir, "namespace")),
        "mca-e2e",
      );
      const whoami = await kubectlWithToken(cluster, after, [
        "auth",
        "whoami",
        "-o",
        "json",
      ]);
      assert.equal(whoami.code, 0, whoami.stderr);
    });
    passed = true;
  } finally {
    await cluster.stop();
  }

  await t.step("stop() leaves no component running", async () => {
    for (const [name, pid] of Object.entries(cluster.pids)) {
      assert.equal(
        await processExists(pid),
        false,
        `${name} (pid ${pid}) still exists`,
      );
    }
    await assert.rejects(
      Deno.connect({ hostname: cluster.host, port: cluster.port }),
      Deno.errors.ConnectionRefused,
      "the API server port still accepts connections",
    );
  });

  if (passed) await Deno.remove(dir, { recursive: true });
});

async function kubectlWithToken(
  cluster: Cluster,
  token: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cluster.bin.kubectl, {
    args: [
      `--server=${cluster.url}`,
      `--certificate-authority=${cluster.caFile}`,
      `--token=${token}`,
      "--kubeconfig=/dev/null",
      `--cache-dir=${join(cluster.dir, "kubectl-cache")}`,
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

async function listNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** True while /proc/<pid> exists (a reaped child's pid is gone). */
async function processExists(pid: number): Promise<boolean> {
  try {
    await Deno.stat(`/proc/${pid}`);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
