import assert from "node:assert/strict";
import { join } from "node:path";
import { stringify } from "yaml";
import {
  discoverUpstream,
  inClusterServer,
} from "../../lib/clusters/upstream.ts";
import { KubeConfig } from "@kubernetes/client-node";
import { writeProjectedVolume } from "../support/cluster.ts";
import {
  issueClientCert,
  makeTestCa,
  type TestCa,
} from "../support/test_certs.ts";

const TMP = new URL("../../tmp/", import.meta.url).pathname;

async function tempDir(prefix: string): Promise<string> {
  await Deno.mkdir(TMP, { recursive: true });
  return await Deno.makeTempDir({ dir: TMP, prefix });
}

function kubeconfig(user: Record<string, unknown>, ca?: TestCa): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name: "c1",
      cluster: {
        server: "https://127.0.0.1:7443",
        ...(ca
          ? { "certificate-authority-data": btoa(ca.certPem) }
          : { "insecure-skip-tls-verify": true }),
      },
    }],
    users: [{ name: "u1", user }],
    contexts: [
      { name: "dev", context: { cluster: "c1", user: "u1", namespace: "d" } },
      { name: "other", context: { cluster: "c1", user: "u1" } },
    ],
    "current-context": "dev",
  });
}

Deno.test("upstream: in-cluster, from the kubelet env and the real SA", async () => {
  const dir = await tempDir("upstream-");
  try {
    await writeProjectedVolume(dir, {
      token: "real-token",
      "ca.crt": "",
      namespace: "prod",
    });
    const up = await discoverUpstream({
      saDir: dir,
      env: {
        KUBERNETES_SERVICE_HOST: "10.96.0.1",
        KUBERNETES_SERVICE_PORT: "443",
      },
    });
    assert.equal(up.url.href, "https://10.96.0.1/");
    assert.equal(up.namespace, "prod");
    assert.match(up.source, /in-cluster/);
    assert.equal((await up.auth()).authorization, "Bearer real-token");
    await writeProjectedVolume(dir, {
      token: "rotated",
      "ca.crt": "",
      namespace: "prod",
    });
    assert.equal((await up.auth()).authorization, "Bearer rotated");
    up.close();

    const v6 = await discoverUpstream({
      saDir: dir,
      env: {
        KUBERNETES_SERVICE_HOST: "fd00::1",
        KUBERNETES_SERVICE_PORT: "6443",
      },
    });
    assert.equal(v6.url.host, "[fd00::1]:6443");
    v6.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("upstream: nothing to find is a clear error", async () => {
  await assert.rejects(
    () =>
      discoverUpstream({ saDir: `${TMP}none`, env: { HOME: `${TMP}none` } }),
    /no upstream API server found.*--kubeconfig/,
  );
});

Deno.test("upstream: kubeconfig with a token, contexts and errors", async () => {
  const dir = await tempDir("kubeconfig-");
  try {
    const path = join(dir, "config");
    await Deno.writeTextFile(path, kubeconfig({ token: "tok" }));
    const up = await discoverUpstream({
      saDir: `${TMP}none`,
      kubeconfig: path,
    });
    assert.equal(up.url.href, "https://127.0.0.1:7443/");
    assert.equal(up.namespace, "d");
    assert.equal((await up.auth()).authorization, "Bearer tok");
    up.close();
    const other = await discoverUpstream({
      saDir: `${TMP}none`,
      env: { KUBECONFIG: `${dir}/missing:${path}` },
      context: "other",
    });
    assert.equal(other.namespace, "default");
    other.close();
    await assert.rejects(
      () => discoverUpstream({ saDir: "x", kubeconfig: path, context: "nope" }),
      /has no context nope/,
    );
    await Deno.writeTextFile(
      join(dir, "dangling"),
      kubeconfig({ token: "t" }).replace("cluster: c1\n", "cluster: gone\n"),
    );
    await assert.rejects(
      () => discoverUpstream({ saDir: "x", kubeconfig: join(dir, "dangling") }),
      /context dev names cluster gone, which the file does not define/,
    );
    await Deno.writeTextFile(join(dir, "bad"), "clusters: [");
    await assert.rejects(
      () => discoverUpstream({ saDir: "x", kubeconfig: join(dir, "bad") }),
      /cannot load kubeconfig/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("upstream: kubeconfig exec plugins and client certificates", async () => {
  const dir = await tempDir("kubeconfig-");
  try {
    const credential = JSON.stringify({
      apiVersion: "client.authentication.k8s.io/v1",
      kind: "ExecCredential",
      status: { token: "from-exec" },
    });
    const execPath = join(dir, "exec");
    await Deno.writeTextFile(
      execPath,
      kubeconfig({
        exec: {
          apiVersion: "client.authentication.k8s.io/v1",
          command: "/bin/sh",
          args: ["-c", `echo '${credential}'`],
          interactiveMode: "Never",
        },
      }),
    );
    const up = await discoverUpstream({ saDir: "x", kubeconfig: execPath });
    assert.equal((await up.auth()).authorization, "Bearer from-exec");
    up.close();

    const ca = makeTestCa();
    const client = issueClientCert(ca, { commonName: "dev" });
    const certPath = join(dir, "cert");
    await Deno.writeTextFile(
      certPath,
      kubeconfig({
        "client-certificate-data": btoa(client.certPem),
        "client-key-data": btoa(client.keyPem),
      }, ca),
    );
    const tls = await discoverUpstream({ saDir: "x", kubeconfig: certPath });
    const auth = await tls.auth();
    assert.equal(auth.authorization, undefined);
    assert.match(String(auth.tls.cert), /BEGIN CERTIFICATE/);
    assert.match(String(auth.tls.key), /PRIVATE KEY/);
    assert.match(String(auth.tls.ca), /BEGIN CERTIFICATE/);
    tls.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("upstream: in-cluster URL rules are client-node's own", () => {
  const cases: [string, string][] = [
    ["10.96.0.1", "443"],
    ["10.96.0.1", "6443"],
    ["fd00::1", "443"],
    ["2001:db8::10", "8080"],
    ["kubernetes.default.svc", "443"],
    ["10.0.0.1", "80"],
    ["10.0.0.1", "8001"],
  ];
  const saved = ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"].map((
    k,
  ) => Deno.env.get(k));
  try {
    for (const [host, port] of cases) {
      Deno.env.set("KUBERNETES_SERVICE_HOST", host);
      Deno.env.set("KUBERNETES_SERVICE_PORT", port);
      const kc = new KubeConfig();
      kc.loadFromCluster();
      assert.equal(
        inClusterServer({
          KUBERNETES_SERVICE_HOST: host,
          KUBERNETES_SERVICE_PORT: port,
        }),
        kc.getCurrentCluster()!.server,
        `${host}:${port}`,
      );
    }
  } finally {
    ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"].forEach((k, i) => {
      if (saved[i] === undefined) Deno.env.delete(k);
      else Deno.env.set(k, saved[i]!);
    });
  }
});

Deno.test("upstream: a ca.crt that is not a certificate is a start-up error naming the file", async () => {
  const dir = await tempDir("upstream-");
  try {
    await writeProjectedVolume(dir, {
      token: "real-token",
      "ca.crt":
        "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
      namespace: "prod",
    });
    await assert.rejects(
      () =>
        discoverUpstream({
          saDir: dir,
          env: {
            KUBERNETES_SERVICE_HOST: "127.0.0.1",
            KUBERNETES_SERVICE_PORT: "6443",
          },
        }),
      (error: Error) => {
        assert.match(error.message, /ca\.crt holds no valid PEM certificate/);
        assert.ok(!error.message.includes("garbage"));
        return true;
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
