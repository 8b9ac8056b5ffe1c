/**
 * `mca --webhook` as a real process behind a real kube-apiserver: the
 * MutatingWebhookConfiguration points at it by URL (127.0.0.1), as the
 * chart's development value does until a node tier runs it in a Pod.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { injectManifests } from "../../lib/inject/manifest.ts";
import { ensureToolchain, startCluster } from "../support/cluster.ts";
import { issueServerCert, makeTestCa } from "../support/test_certs.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
type Obj = { [key: string]: unknown };

async function startWebhookProcess(
  dir: string,
  certFile: string,
  keyFile: string,
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "main.ts"),
      "--webhook",
      "--listen=127.0.0.1",
      "--port=0",
      `--tls-cert=${certFile}`,
      `--tls-key=${keyFile}`,
      "--namespace=mca-system",
      "--image=mca:e2e",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream());
  const reader = lines.getReader();
  let text = "";
  let port = 0;
  const deadline = Date.now() + 30_000;
  while (port === 0 && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) throw new Error("mca --webhook exited before it was ready");
    text += value;
    const m = text.match(/"msg":"webhook ready".*"port":(\d+)/);
    if (m) port = Number(m[1]);
  }
  assert.ok(port > 0, "mca --webhook did not log ready");
  const log = join(dir, "webhook.log");
  // Keep draining stdout into a file so the process never blocks on it.
  (async () => {
    const file = await Deno.open(log, { write: true, create: true });
    await file.write(new TextEncoder().encode(text));
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({
        done: true,
        value: "",
      }));
      if (done) break;
      await file.write(new TextEncoder().encode(value));
    }
    file.close();
  })();
  return { child, port };
}

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

function pod(name: string, ns: string, extra = ""): string {
  return `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: ${ns}\n${extra}` +
    "spec:\n  containers: [{name: app, image: busybox}]\n";
}

function names(list: unknown): string[] {
  return ((list ?? []) as Obj[]).map((c) => String(c.name));
}

Deno.test("webhook e2e: a real API server injects opted-in Pods through mca --webhook", async () => {
  await ensureToolchain();
  const dir = join(
    ROOT,
    "tmp",
    "e2e",
    `webhook-${crypto.randomUUID().slice(0, 8)}`,
  );
  const cluster = await startCluster({ dir });
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
      const deadline = Date.now() + 20_000;
      while ((await k(["get", "sa", "default", "-n", ns])).code !== 0) {
        assert.ok(Date.now() < deadline, `no default SA in ${ns}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await cluster.kubectl(["apply", "-f", "-"], {
      stdin: JSON.stringify(webhookConfig(hook.port, ca.certPem, "Fail")),
    });
    // The API server's webhook informer picks the configuration up shortly.
    const deadline = Date.now() + 20_000;
    let injected: Obj | undefined;
    for (let i = 0; !injected; i++) {
      const r = await k(
        ["create", "-o", "json", "-f", "-"],
        pod(`web-${i}`, "inject-on"),
      );
      const out = r.code === 0 ? JSON.parse(r.stdout) as Obj : undefined;
      if (out && names((out.spec as Obj).initContainers)[0] === "mca") {
        injected = out;
      }
      assert.ok(Date.now() < deadline, `Pods were not injected: ${r.stderr}`);
      if (!injected) await new Promise((r) => setTimeout(r, 200));
    }
    const spec = injected.spec as Obj;
    assert.equal((spec.initContainers as Obj[])[0].image, "mca:e2e");

    // The same Pod through the CLI, stored in the unlabelled namespace.
    const cli = injectManifests(pod("cli", "inject-off"), { image: "mca:e2e" });
    const stored = JSON.parse(
      (await cluster.kubectl(["create", "-o", "json", "-f", "-"], {
        stdin: cli,
      })).stdout,
    ) as Obj;
    const strip = (s: Obj) => ({
      ...s,
      volumes: (s.volumes as Obj[]).filter((v) =>
        !/^kube-api-access-[a-z0-9]{5}$/.test(String(v.name))
      ),
    });
    assert.deepEqual(
      strip(spec),
      strip(stored.spec as Obj),
      "CLI and webhook give the same Pod spec",
    );

    const off = JSON.parse(
      (await cluster.kubectl(["create", "-o", "json", "-f", "-"], {
        stdin: pod("plain", "inject-off"),
      })).stdout,
    ) as Obj;
    assert.deepEqual(names((off.spec as Obj).initContainers), []);
    const disabled = JSON.parse(
      (await cluster.kubectl(["create", "-o", "json", "-f", "-"], {
        stdin: pod(
          "opted-out",
          "inject-on",
          "  labels: {mca.io/inject: disabled}\n",
        ),
      })).stdout,
    ) as Obj;
    assert.deepEqual(names((disabled.spec as Obj).initContainers), []);

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

    const annotated = JSON.parse(
      (await cluster.kubectl(["create", "-o", "json", "-f", "-"], {
        stdin: pod(
          "routed",
          "inject-on",
          "  annotations: {mca.io/routing-configmap: routes, mca.io/clusters-secret: kc}\n",
        ),
      })).stdout,
    ) as Obj;
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
    hook.child.kill("SIGTERM");
    await hook.child.status;
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
    try {
      hook.child.kill("SIGTERM");
    } catch { /* already stopped */ }
    await hook.child.status;
    await cluster.stop();
  }
});
