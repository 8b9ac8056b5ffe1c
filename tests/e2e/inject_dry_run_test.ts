/**
 * Every example in deploy/examples/, injected, must be accepted by a real
 * kube-apiserver (`kubectl apply --dry-run=server`) AND come back with the
 * sidecar intact. The server silently drops fields it does not support
 * (e.g. an init container's restartPolicy other than Always on some
 * versions), so the test compares what the server returns, not just the
 * exit code.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { MCA_SA_PATH, SA_PATH } from "../../lib/inject/pod_spec.ts";
import { injectManifests } from "../../lib/inject/manifest.ts";
import { ensureToolchain, startCluster } from "../support/cluster.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const EXAMPLES = join(ROOT, "deploy", "examples");
const TMP_DIR = join(ROOT, "tmp");

type Obj = { [key: string]: unknown };

/** Where each kind keeps its Pod spec (the kinds the examples use). */
const POD_SPEC_PATHS: Record<string, string[]> = {
  Pod: ["spec"],
  Deployment: ["spec", "template", "spec"],
  StatefulSet: ["spec", "template", "spec"],
  DaemonSet: ["spec", "template", "spec"],
  ReplicaSet: ["spec", "template", "spec"],
  Job: ["spec", "template", "spec"],
  CronJob: ["spec", "jobTemplate", "spec", "template", "spec"],
};

function at(obj: Obj, path: string[]): Obj {
  let cur: unknown = obj;
  for (const key of path) cur = (cur as Obj | undefined)?.[key];
  assert.ok(cur && typeof cur === "object", `no ${path.join(".")}`);
  return cur as Obj;
}

function list(value: unknown): Obj[] {
  return Array.isArray(value) ? value as Obj[] : [];
}

/** Asserts the sidecar and the redirection, as the API server returned them. */
function assertInjected(spec: Obj, where: string): void {
  const inits = list(spec.initContainers);
  assert.equal(inits[0]?.name, "mca", `${where}: initContainers[0] is mca`);
  assert.equal(
    inits[0].restartPolicy,
    "Always",
    `${where}: the server kept mca's restartPolicy Always`,
  );
  assert.equal(
    inits.filter((c) => c.name === "mca").length,
    1,
    `${where}: one mca`,
  );
  assert.ok(inits[0].startupProbe, `${where}: mca keeps its startupProbe`);
  assert.deepEqual(
    list(inits[0].volumeMounts).slice(0, 3).map((m) => [m.name, m.mountPath]),
    [
      ["kube-api-access-sa", SA_PATH],
      ["kube-api-access-mca-sa", MCA_SA_PATH],
      ["mca-state", "/var/lib/mca"],
    ],
    `${where}: mca's mounts`,
  );
  assert.equal(spec.automountServiceAccountToken, false, `${where}: automount`);

  const volumes = new Map(list(spec.volumes).map((v) => [v.name, v]));
  const real = volumes.get("kube-api-access-sa") as Obj | undefined;
  assert.ok(real?.projected, `${where}: kube-api-access-sa is projected`);
  const sources = list((real.projected as Obj).sources);
  assert.deepEqual(
    sources.map((s) => Object.keys(s).sort().join(",")),
    ["serviceAccountToken", "configMap", "downwardAPI"],
    `${where}: projected sources`,
  );
  assert.equal(
    (sources[0].serviceAccountToken as Obj).path,
    "token",
    `${where}: token path`,
  );
  assert.ok(
    (volumes.get("kube-api-access-mca-sa") as Obj | undefined)?.emptyDir,
    `${where}: kube-api-access-mca-sa is an emptyDir`,
  );
  assert.ok(
    (volumes.get("mca-state") as Obj | undefined)?.emptyDir,
    `${where}: mca-state is an emptyDir`,
  );

  const apps = [...inits.slice(1), ...list(spec.containers)];
  assert.ok(apps.length > 0, `${where}: app containers`);
  for (const c of apps) {
    const env = new Map(list(c.env).map((e) => [e.name, e.value]));
    assert.equal(env.get("KUBERNETES_SERVICE_HOST"), "127.0.0.1", `${where}`);
    assert.equal(env.get("KUBERNETES_SERVICE_PORT"), "6443", `${where}`);
    const saMounts = list(c.volumeMounts).filter((m) =>
      m.mountPath === SA_PATH
    );
    assert.deepEqual(
      saMounts.map((m) => [m.name, m.readOnly]),
      [["kube-api-access-mca-sa", true]],
      `${where}: container ${c.name} reads mca's SA dir`,
    );
  }
}

Deno.test("inject: every deploy/examples manifest passes a real API server's dry run intact", async () => {
  const files = [...Deno.readDirSync(EXAMPLES)]
    .filter((e) => e.isFile && /\.ya?ml$/.test(e.name))
    .map((e) => e.name)
    .sort();
  assert.ok(files.length > 0, `no examples in ${EXAMPLES}`);

  await ensureToolchain();
  const dir = join(
    TMP_DIR,
    "e2e",
    `inject-dry-run-${crypto.randomUUID().slice(0, 8)}`,
  );
  const cluster = await startCluster({ dir });
  let passed = false;
  try {
    for (const file of files) {
      const source = await Deno.readTextFile(join(EXAMPLES, file));
      const injected = injectManifests(source);
      // The examples name their own namespace; move every object into the
      // test namespace (which has the `default` ServiceAccount).
      const objects = parseAllDocuments(injected)
        .map((d) => d.toJS() as Obj | null)
        .filter((o): o is Obj => o !== null);
      for (const o of objects) {
        (o.metadata as Obj).namespace = cluster.namespace;
      }
      const sent = { apiVersion: "v1", kind: "List", items: objects };
      const result = await cluster.kubectl(
        ["apply", "--dry-run=server", "-o", "json", "-f", "-"],
        { stdin: JSON.stringify(sent), check: false },
      );
      assert.equal(
        result.code,
        0,
        `${file}: kubectl apply --dry-run=server failed:\n${result.stderr}`,
      );
      const parsed = JSON.parse(result.stdout) as Obj;
      const returned = parsed.kind === "List" ? list(parsed.items) : [parsed];
      assert.deepEqual(
        returned.map((o) => `${o.kind}/${(o.metadata as Obj).name}`),
        objects.map((o) => `${o.kind}/${(o.metadata as Obj).name}`),
        `${file}: the server returned every object`,
      );
      let pods = 0;
      for (const obj of returned) {
        const path = POD_SPEC_PATHS[String(obj.kind)];
        if (!path) continue;
        pods++;
        assertInjected(
          at(obj, path),
          `${file} ${obj.kind}/${(obj.metadata as Obj).name}`,
        );
      }
      assert.ok(pods > 0, `${file}: no Pod spec in the example`);
    }
    passed = true;
  } finally {
    await cluster.stop();
  }
  // A failed run keeps the cluster's logs for inspection.
  if (passed) await Deno.remove(dir, { recursive: true });
});

Deno.test("inject: routing, clusters, policy and metrics wiring passes a real API server's dry run intact", async () => {
  await ensureToolchain();
  const dir = join(
    TMP_DIR,
    "e2e",
    `inject-wiring-${crypto.randomUUID().slice(0, 8)}`,
  );
  const cluster = await startCluster({ dir });
  try {
    const pod =
      `apiVersion: v1\nkind: Pod\nmetadata: {name: wired, namespace: ${cluster.namespace}}\n` +
      "spec:\n  containers: [{name: app, image: busybox}]\n";
    const injected = injectManifests(pod, {
      routingConfigMap: "routes",
      clustersSecret: "kubeconfigs",
      policyConfigMap: "policy",
      metricsPort: 6469,
    });
    const result = await cluster.kubectl(
      ["apply", "--dry-run=server", "-o", "json", "-f", "-"],
      { stdin: injected },
    );
    const spec = (JSON.parse(result.stdout) as Obj).spec as Obj;
    assertInjected(spec, "wired Pod");
    const mca = list(spec.initContainers)[0];
    assert.deepEqual(mca.args, [
      "--clusters-dir",
      "/etc/mca/clusters",
      "--routing-config",
      "/etc/mca/routing/routing.yaml",
      "--policy",
      "/etc/mca/policy/policy.yaml",
      "--metrics-port",
      "6469",
    ]);
    assert.deepEqual(
      list(mca.ports).map((p) => [p.name, p.containerPort]),
      [["mca-metrics", 6469]],
    );
    const volumes = new Map(list(spec.volumes).map((v) => [v.name, v]));
    assert.equal(
      ((volumes.get("mca-routing") as Obj).configMap as Obj).name,
      "routes",
    );
    assert.equal(
      ((volumes.get("mca-clusters") as Obj).secret as Obj).secretName,
      "kubeconfigs",
    );
    for (const c of list(spec.containers)) {
      assert.ok(
        !list(c.volumeMounts).some((m) => String(m.name).startsWith("mca-")),
        `app container ${c.name} mounts no mca volume`,
      );
    }
  } finally {
    await cluster.stop();
  }
});
