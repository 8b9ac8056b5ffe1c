/**
 * `mca --webhook` as a real process behind a real kube-apiserver: the
 * MutatingWebhookConfiguration points at it by URL (127.0.0.1), as the
 * chart's `webhook.url` value allows. The node tier runs it in the chart's
 * own Pod on a real kubelet (tests/support/node_webhook.ts).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { injectManifests } from "../../lib/inject/manifest.ts";
import { ensureToolchain, startCluster } from "../support/cluster.ts";
import { issueServerCert, makeTestCa } from "../support/test_certs.ts";
import {
  containerNames as names,
  createStored,
  createUntilInjected,
  type Obj,
  podYaml as pod,
  startWebhookProcess,
  waitForDefaultServiceAccount,
  withoutServiceAccountVolume,
} from "../support/webhook.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function webhookConfig(
  port: number,
  caPem: string,
  failurePolicy: string,
): Obj {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: "mca-e2e" },
    webhooks: [{
      name: "inject.mca.io",
      clientConfig: {
        url: `https://127.0.0.1:${port}/inject`,
        caBundle: btoa(caPem),
      },
      rules: [{
        operations: ["CREATE"],
        apiGroups: [""],
        apiVersions: ["v1"],
        resources: ["pods"],
      }],
      namespaceSelector: { matchLabels: { "mca.io/inject": "enabled" } },
      objectSelector: {
        matchExpressions: [{
          key: "mca.io/inject",
          operator: "NotIn",
          values: ["disabled"],
        }],
      },
      failurePolicy,
      reinvocationPolicy: "IfNeeded",
      sideEffects: "None",
      admissionReviewVersions: ["v1"],
      timeoutSeconds: 5,
    }],
  };
}

/** The Pods matching `selector`, once there are `n` (60 s deadline). */
async function podsOf(
  cluster: Awaited<ReturnType<typeof startCluster>>,
  namespace: string,
  selector: string,
  n: number,
): Promise<Obj[]> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const got = JSON.parse(
      (await cluster.kubectl([
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        selector,
        "-o",
        "json",
      ])).stdout,
    ).items as Obj[];
    if (got.length >= n) return got;
    assert.ok(Date.now() < deadline, `${n} Pods of ${selector} never came`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test("webhook e2e: a real API server injects opted-in Pods through mca --webhook", async () => {
  await ensureToolchain();
  const dir = join(
    ROOT,
    "tmp",
    "e2e",
    `webhook-${crypto.randomUUID().slice(0, 8)}`,
  );
  const cluster = await startCluster({
    dir,
    controllers: ["deployment-controller", "replicaset-controller"],
  });
  const ca = makeTestCa();
  const leaf = issueServerCert(ca);
  await Deno.writeTextFile(join(dir, "tls.crt"), leaf.certPem);
  await Deno.writeTextFile(join(dir, "tls.key"), leaf.keyPem);
  const hook = await startWebhookProcess(
    dir,
    join(dir, "tls.crt"),
    join(dir, "tls.key"),
  );
  try {
    const k = (args: string[], stdin?: string) =>
      cluster.kubectl(args, { stdin, check: false });
    await k(["create", "namespace", "inject-on"]);
    await k(["label", "namespace", "inject-on", "mca.io/inject=enabled"]);
    await k(["create", "namespace", "inject-off"]);
    for (const ns of ["inject-on", "inject-off"]) {
      await waitForDefaultServiceAccount(cluster, ns);
    }
    await cluster.kubectl(["apply", "-f", "-"], {
      stdin: JSON.stringify(webhookConfig(hook.port, ca.certPem, "Fail")),
    });
    // The API server's webhook informer picks the configuration up shortly.
    const injected = await createUntilInjected(cluster, "web", "inject-on");
    const spec = injected.spec as Obj;
    assert.equal((spec.initContainers as Obj[])[0].image, "mca:e2e");

    // The same Pod through the CLI, stored in the unlabelled namespace.
    const cli = injectManifests(pod("cli", "inject-off"), { image: "mca:e2e" });
    const stored = await createStored(cluster, cli);
    const strip = withoutServiceAccountVolume;
    assert.deepEqual(
      strip(spec),
      strip(stored.spec as Obj),
      "CLI and webhook give the same Pod spec",
    );

    const off = await createStored(cluster, pod("plain", "inject-off"));
    assert.deepEqual(names((off.spec as Obj).initContainers), []);
    const disabled = await createStored(
      cluster,
      pod(
        "opted-out",
        "inject-on",
        "  labels: {mca.io/inject: disabled}\n",
      ),
    );
    assert.deepEqual(names((disabled.spec as Obj).initContainers), []);

    // A Deployment's Pods are made by the ReplicaSet controller, with
    // generateName and no name yet when the webhook sees them.
    await cluster.kubectl(["apply", "-f", "-"], {
      stdin: JSON.stringify({
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "deployed", namespace: "inject-on" },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: "deployed" } },
          template: {
            metadata: { labels: { app: "deployed" } },
            spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
          },
        },
      }),
    });
    const deployed = await podsOf(cluster, "inject-on", "app=deployed", 2);
    for (const p of deployed) {
      const meta = p.metadata as Obj;
      assert.match(String(meta.generateName), /^deployed-[a-z0-9]+-$/);
      assert.equal(
        names((p.spec as Obj).initContainers)[0],
        "mca",
        String(meta.name),
      );
    }

    const dry = await cluster.kubectl([
      "apply",
      "--dry-run=server",
      "-o",
      "json",
      "-f",
      "-",
    ], { stdin: pod("dry", "inject-on") });
    assert.equal(
      names((JSON.parse(dry.stdout).spec as Obj).initContainers)[0],
      "mca",
    );

    const host = await k(
      ["create", "-o", "json", "-f", "-"],
      pod("host", "inject-on").replace(
        "spec:\n",
        "spec:\n  hostNetwork: true\n",
      ),
    );
    assert.equal(host.code, 0, host.stderr);
    assert.match(host.stderr, /Warning: mca: the Pod uses hostNetwork/);
    assert.deepEqual(
      names((JSON.parse(host.stdout).spec as Obj).initContainers),
      [],
    );

    const annotated = await createStored(
      cluster,
      pod(
        "routed",
        "inject-on",
        "  annotations: {mca.io/routing-configmap: routes, mca.io/clusters-secret: kc}\n",
      ),
    );
    assert.deepEqual(
      ((annotated.spec as Obj).initContainers as Obj[])[0].args,
      [
        "--clusters-dir",
        "/etc/mca/clusters",
        "--routing-config",
        "/etc/mca/routing/routing.yaml",
      ],
    );

    // Webhook down: Fail blocks opted-in Pods, Ignore admits them un-injected.
    await hook.stop();
    const blocked = await k(["create", "-f", "-"], pod("blocked", "inject-on"));
    assert.notEqual(blocked.code, 0);
    assert.match(blocked.stderr, /inject\.mca\.io/);
    await cluster.kubectl(["apply", "-f", "-"], {
      stdin: JSON.stringify(webhookConfig(hook.port, ca.certPem, "Ignore")),
    });
    const until = Date.now() + 20_000;
    let admitted: Obj | undefined;
    for (let i = 0; !admitted; i++) {
      const r = await k(
        ["create", "-o", "json", "-f", "-"],
        pod(`ignored-${i}`, "inject-on"),
      );
      if (r.code === 0) admitted = JSON.parse(r.stdout) as Obj;
      assert.ok(
        Date.now() < until,
        "failurePolicy Ignore never admitted a Pod",
      );
    }
    assert.deepEqual(names((admitted.spec as Obj).initContainers), []);
  } finally {
    await hook.stop();
    await cluster.stop();
  }
});
