/**
 * The Helm chart (deploy/helm/mca) and the plain manifests rendered from it
 * (deploy/manifests/mca.yaml): lint, byte-for-byte golden renders, the
 * certificate Helm generates at install time, and `helm install` into the
 * proof tier's real kube-apiserver with the webhook served by an
 * `mca --webhook` process on 127.0.0.1 (`webhook.url`, no Pods: no node).
 *
 * Regenerate the golden files and mca.yaml with MCA_UPDATE_GOLDEN=1.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { injectManifests } from "../../lib/inject/manifest.ts";
import { ensureToolchain, startCluster } from "../support/cluster.ts";
import {
  CHART_DIR,
  ensureHelm,
  helm,
  renderChart,
  renderManifests,
  ROOT,
} from "../support/helm.ts";
import { issueServerCert, makeTestCa } from "../support/test_certs.ts";
import {
  containerNames,
  createStored,
  createUntilInjected,
  type Obj,
  podYaml,
  startWebhookProcess,
  waitForDefaultServiceAccount,
  withoutServiceAccountVolume,
} from "../support/webhook.ts";

const GOLDEN_DIR = join(ROOT, "tests", "e2e", "helm_golden");
const UPDATE = Deno.env.get("MCA_UPDATE_GOLDEN") === "1";

function docs(yamlText: string): Obj[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null);
}

function find(objects: Obj[], kind: string): Obj {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind} in the render`);
  return found[0];
}

function webhookArgs(deployment: Obj): string[] {
  const pod = ((deployment.spec as Obj).template as Obj).spec as Obj;
  return ((pod.containers as Obj[])[0].args as string[]).slice();
}

/** The inject flags among a webhook Deployment's args (no server flags). */
function injectFlagsOf(deployment: Obj): string[] {
  return webhookArgs(deployment).filter((a) =>
    !/^--(webhook|port=|tls-cert=|tls-key=)/.test(a)
  );
}

/** Compares with (or, with MCA_UPDATE_GOLDEN=1, writes) a file. */
async function assertGolden(path: string, actual: string): Promise<void> {
  if (UPDATE) {
    await Deno.writeTextFile(path, actual);
    return;
  }
  const expected = await Deno.readTextFile(path).catch(() => "");
  assert.equal(
    actual,
    expected,
    `${path} differs from the render (regenerate: MCA_UPDATE_GOLDEN=1 deno test -A tests/e2e/helm_test.ts)`,
  );
}

Deno.test("helm lint: the chart passes with defaults, failurePolicy=Ignore and cert-manager; bad values (schema or template checks) stop the render", async () => {
  await ensureHelm();
  for (
    const sets of [
      [],
      ["--set", "webhook.failurePolicy=Ignore"],
      ["--set", "certManager.enabled=true"],
      [
        "--set",
        "webhook.failurePolicy=Ignore",
        "--set",
        "certManager.enabled=true",
      ],
    ]
  ) {
    const r = await helm(["lint", "--strict", CHART_DIR, ...sets], {
      check: false,
    });
    assert.equal(r.code, 0, `helm lint ${sets.join(" ")}:\n${r.stdout}`);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
  for (
    const [sets, message] of [
      // values.schema.json, then the templates' own checks.
      [["--set", "replica=3"], /additional properties 'replica' not allowed/],
      [["--set", "webhook.failurePolicy=Sometimes"], /'Fail', 'Ignore'/],
      [["--set", "webhook.url=http://127.0.0.1:1/inject"], /webhook\/url/],
      [["--set", "webhook.url=https://127.0.0.1:1/inject"], /caBundle/],
      [["--set", "certificate.existingSecret=tls"], /certificate\.caBundle/],
      [[
        "--set",
        "certManager.enabled=true",
        "--set",
        "certificate.existingSecret=tls",
      ], /pick one/],
      [["--set", "webhook.timeoutSeconds=31"], /timeoutSeconds/],
    ] as const
  ) {
    // helm lint only logs a template's `fail` (INFO); rendering stops.
    const r = await helm(["template", "mca", CHART_DIR, ...sets], {
      check: false,
    });
    assert.notEqual(r.code, 0, `helm template ${sets.join(" ")} rendered`);
    assert.match(r.stdout + r.stderr, message);
  }
});

Deno.test("helm template: golden renders (default with existingSecret, url mode, cert-manager) are byte for byte", async () => {
  for (const name of ["default", "url", "cert-manager"]) {
    const values = join(GOLDEN_DIR, `${name}.values.yaml`);
    const rendered = await renderChart(["-f", values]);
    await assertGolden(join(GOLDEN_DIR, `${name}.yaml`), rendered);
    // Two renders are equal: nothing random in these cases.
    assert.equal(await renderChart(["-f", values]), rendered);
  }
});

Deno.test("deploy/manifests/mca.yaml is the chart rendered with deploy/manifests/values.yaml", async () => {
  await assertGolden(
    join(ROOT, "deploy", "manifests", "mca.yaml"),
    await renderManifests(),
  );
});

Deno.test("helm template: what the chart promises (no RBAC, hardened Pod, selectors, PDB, cert modes)", async () => {
  const def = docs(
    await renderChart(["-f", join(GOLDEN_DIR, "default.values.yaml")]),
  );
  const kinds = def.map((o) => o.kind).sort();
  assert.deepEqual(kinds, [
    "Deployment",
    "MutatingWebhookConfiguration",
    "PodDisruptionBudget",
    "Service",
    "ServiceAccount",
  ]);
  const deployment = find(def, "Deployment");
  const spec = deployment.spec as Obj;
  assert.equal(spec.replicas, 2);
  const pod = (spec.template as Obj).spec as Obj;
  assert.equal(pod.automountServiceAccountToken, false);
  assert.deepEqual(pod.securityContext, {
    runAsNonRoot: true,
    runAsUser: 65532,
    runAsGroup: 65532,
    fsGroup: 65532,
    seccompProfile: { type: "RuntimeDefault" },
  });
  const c = (pod.containers as Obj[])[0];
  const sc = c.securityContext as Obj;
  assert.equal(sc.readOnlyRootFilesystem, true);
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.deepEqual((sc.capabilities as Obj).drop, ["ALL"]);
  for (const probe of ["readinessProbe", "livenessProbe"]) {
    assert.deepEqual((c[probe] as Obj).httpGet, {
      path: "/healthz",
      port: "https",
      scheme: "HTTPS",
    });
  }
  assert.deepEqual(c.ports, [{
    name: "https",
    containerPort: 8443,
    protocol: "TCP",
  }]);
  assert.ok((pod.affinity as Obj).podAntiAffinity, "pod anti-affinity");
  const service = find(def, "Service");
  assert.deepEqual((service.spec as Obj).ports, [{
    name: "https",
    port: 443,
    targetPort: "https",
    protocol: "TCP",
  }]);
  const mwc = find(def, "MutatingWebhookConfiguration");
  const hook = (mwc.webhooks as Obj[])[0];
  assert.deepEqual(hook.clientConfig, {
    service: {
      name: "mca",
      namespace: "mca-system",
      path: "/inject",
      port: 443,
    },
    caBundle: btoa(
      String(
        (docs(
          await Deno.readTextFile(join(GOLDEN_DIR, "default.values.yaml")),
        )[0].certificate as Obj).caBundle,
      ).trim(),
    ),
  });
  assert.equal(hook.failurePolicy, "Fail");
  assert.equal(hook.sideEffects, "None");
  assert.equal(hook.reinvocationPolicy, "IfNeeded");
  assert.deepEqual(
    ((hook.namespaceSelector as Obj).matchLabels as Obj)["mca.io/inject"],
    "enabled",
  );
  assert.deepEqual((hook.objectSelector as Obj).matchExpressions, [{
    key: "mca.io/inject",
    operator: "NotIn",
    values: ["disabled"],
  }]);

  // One replica: no PodDisruptionBudget (minAvailable 1 would block drains).
  const one = docs(
    await renderChart([
      "-f",
      join(GOLDEN_DIR, "default.values.yaml"),
      "--set",
      "replicas=1",
    ]),
  );
  assert.ok(!one.some((o) => o.kind === "PodDisruptionBudget"));

  // cert-manager: a Certificate for the Service, the CA injected, no caBundle.
  const cm = docs(
    await renderChart(["-f", join(GOLDEN_DIR, "cert-manager.values.yaml")]),
  );
  const cert = find(cm, "Certificate");
  assert.equal((cert.spec as Obj).secretName, "mca-webhook-tls");
  assert.ok(
    ((cert.spec as Obj).dnsNames as string[]).includes("mca.mca-system.svc"),
  );
  const cmHook = find(cm, "MutatingWebhookConfiguration");
  assert.equal(
    ((cmHook.metadata as Obj).annotations as Obj)[
      "cert-manager.io/inject-ca-from"
    ],
    "mca-system/mca-webhook",
  );
  assert.equal(
    ((cmHook.webhooks as Obj[])[0].clientConfig as Obj).caBundle,
    undefined,
  );
  assert.equal(
    cm.filter((o) => o.kind === "ConfigMap").map((o) =>
      (o.metadata as Obj).namespace
    ).join(","),
    "team-a,team-b",
  );
});

Deno.test("helm template: the sidecar values are real mca inject flags and reach the injected Pod", async () => {
  const cm = docs(
    await renderChart(["-f", join(GOLDEN_DIR, "cert-manager.values.yaml")]),
  );
  const flags = injectFlagsOf(find(cm, "Deployment"));
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "main.ts"), "--inject", ...flags],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = out.stdin.getWriter();
  await writer.write(new TextEncoder().encode(podYaml("p", "team-a")));
  await writer.close();
  const result = await out.output();
  const stderr = new TextDecoder().decode(result.stderr);
  assert.equal(result.code, 0, `mca --inject ${flags.join(" ")}: ${stderr}`);
  const injected = docs(new TextDecoder().decode(result.stdout))[0];
  const mca = ((injected.spec as Obj).initContainers as Obj[])[0];
  assert.equal(
    mca.image,
    "registry.example/mca@sha256:" + "0".repeat(64),
  );
  assert.equal(mca.imagePullPolicy, "IfNotPresent");
  assert.deepEqual(mca.resources, { requests: { cpu: "20m", memory: "96Mi" } });
  assert.deepEqual(mca.ports, [{
    name: "mca-metrics",
    containerPort: 6453,
    protocol: "TCP",
  }]);
  assert.equal((mca.securityContext as Obj).runAsUser, 10001);
  const args = (mca.args as string[]).join(" ");
  assert.match(args, /--routing-config \/etc\/mca\/routing\/routing\.yaml/);
  assert.match(args, /--clusters-dir \/etc\/mca\/clusters/);
  assert.match(args, /--policy /);
  const volumes = ((injected.spec as Obj).volumes as Obj[]).map((v) =>
    JSON.stringify(v.configMap ?? v.secret ?? null)
  ).join(" ");
  assert.match(volumes, /"name":"mca-routing"/);
  assert.match(volumes, /"secretName":"mca-clusters"/);
  assert.match(volumes, /"name":"mca-policy"/);
});

Deno.test("helm template (defaults): the generated caBundle verifies the generated Secret's certificate", async () => {
  const render = async () => {
    const objects = docs(await renderChart([]));
    const secret = find(objects, "Secret");
    const data = secret.data as Record<string, string>;
    const hook = (find(objects, "MutatingWebhookConfiguration")
      .webhooks as Obj[])[0];
    const caBundle = (hook.clientConfig as Obj).caBundle as string;
    return { secret, data, caBundle };
  };
  const { secret, data, caBundle } = await render();
  assert.equal(secret.type, "kubernetes.io/tls");
  assert.equal(caBundle, data["ca.crt"], "caBundle is the Secret's ca.crt");
  const ca = new X509Certificate(Buffer.from(caBundle, "base64"));
  const leaf = new X509Certificate(Buffer.from(data["tls.crt"], "base64"));
  assert.ok(ca.ca, "the caBundle is a CA certificate");
  assert.ok(leaf.checkIssued(ca), "the CA issued the serving certificate");
  assert.ok(leaf.verify(ca.publicKey), "the CA's key signed it");
  assert.ok(
    leaf.checkPrivateKey(
      createPrivateKey(Buffer.from(data["tls.key"], "base64")),
    ),
    "tls.key is the certificate's key",
  );
  for (
    const dns of ["mca.mca-system.svc", "mca.mca-system.svc.cluster.local"]
  ) {
    assert.ok(leaf.checkHost(dns), `the certificate is valid for ${dns}`);
  }
  assert.ok(
    new Date(leaf.validTo).getTime() > Date.now() + 365 * 86_400_000,
    "valid for more than a year",
  );
  // A CA from another render does not verify it: each install generates its own.
  const other = await render();
  const otherCa = new X509Certificate(Buffer.from(other.caBundle, "base64"));
  assert.notEqual(otherCa.fingerprint256, ca.fingerprint256);
  assert.ok(!leaf.verify(otherCa.publicKey));
});

Deno.test("helm install into a real API server: labelled namespaces get the sidecar through the chart's webhook configuration; uninstall removes it", async () => {
  await ensureHelm();
  await ensureToolchain();
  const dir = join(
    ROOT,
    "tmp",
    "e2e",
    `helm-${crypto.randomUUID().slice(0, 8)}`,
  );
  const cluster = await startCluster({ dir });
  const ca = makeTestCa();
  const leaf = issueServerCert(ca);
  const caFile = join(dir, "webhook-ca.crt");
  await Deno.writeTextFile(join(dir, "tls.crt"), leaf.certPem);
  await Deno.writeTextFile(join(dir, "tls.key"), leaf.keyPem);
  await Deno.writeTextFile(caFile, ca.certPem);
  const values = (url: string) => [
    "--set",
    "replicas=0",
    "--set",
    "image.repository=mca-e2e",
    "--set",
    "image.tag=chart",
    "--set",
    "sidecar.memoryLimit=300Mi",
    "--set",
    `webhook.url=${url}`,
    "--set-file",
    `webhook.caBundle=${caFile}`,
  ];
  // The webhook process runs with the flags the chart gives its Deployment.
  const rendered = docs(
    await renderChart(values("https://127.0.0.1:1/inject")),
  );
  const hook = await startWebhookProcess(
    dir,
    join(dir, "tls.crt"),
    join(dir, "tls.key"),
    injectFlagsOf(find(rendered, "Deployment")),
  );
  const h = (args: string[]) =>
    helm([...args, "--kubeconfig", cluster.adminKubeconfig], {
      home: dir,
      check: false,
    });
  const k = (args: string[], stdin?: string) =>
    cluster.kubectl(args, { stdin, check: false });
  try {
    const url = `https://127.0.0.1:${hook.port}/inject`;
    const install = await h([
      "install",
      "mca",
      CHART_DIR,
      "--namespace",
      "mca-system",
      "--create-namespace",
      ...values(url),
    ]);
    assert.equal(install.code, 0, install.stderr);
    assert.match(install.stdout, /STATUS: deployed/);

    const mwc = JSON.parse(
      (await cluster.kubectl([
        "get",
        "mutatingwebhookconfiguration",
        "mca",
        "-o",
        "json",
      ])).stdout,
    ) as Obj;
    const clientConfig = (mwc.webhooks as Obj[])[0].clientConfig as Obj;
    assert.equal(clientConfig.url, url);
    assert.equal(atob(clientConfig.caBundle as string), ca.certPem.trim());

    // The release: no RBAC at all; the self-signed Secret made at install.
    const manifest = await h(["get", "manifest", "mca", "-n", "mca-system"]);
    assert.equal(manifest.code, 0, manifest.stderr);
    const kinds = docs(manifest.stdout).map((o) => o.kind);
    for (const kind of ["Role", "ClusterRole", "RoleBinding"]) {
      assert.ok(!kinds.includes(kind), `the release has a ${kind}`);
    }
    assert.ok(!kinds.includes("ClusterRoleBinding"));
    const secret = JSON.parse(
      (await cluster.kubectl([
        "get",
        "secret",
        "mca-webhook-tls",
        "-n",
        "mca-system",
        "-o",
        "json",
      ])).stdout,
    ) as Obj;
    const data = secret.data as Record<string, string>;
    assert.ok(
      new X509Certificate(Buffer.from(data["tls.crt"], "base64")).verify(
        new X509Certificate(Buffer.from(data["ca.crt"], "base64")).publicKey,
      ),
      "the installed Secret's CA signed its certificate",
    );
    // An upgrade keeps the generated certificate (lookup), so the running
    // webhook Pods and the caBundle never disagree after `helm upgrade`.
    const upgrade = await h([
      "upgrade",
      "mca",
      CHART_DIR,
      "--namespace",
      "mca-system",
      ...values(url),
    ]);
    assert.equal(upgrade.code, 0, upgrade.stderr);
    assert.match(upgrade.stdout, /REVISION: 2/);
    const after = JSON.parse(
      (await cluster.kubectl([
        "get",
        "secret",
        "mca-webhook-tls",
        "-n",
        "mca-system",
        "-o",
        "json",
      ])).stdout,
    ) as Obj;
    assert.deepEqual(after.data, data, "helm upgrade kept the certificate");

    await k(["create", "namespace", "x"]);
    await k(["label", "namespace", "x", "mca.io/inject=enabled"]);
    await k(["create", "namespace", "plain"]);
    await waitForDefaultServiceAccount(cluster, "x");
    await waitForDefaultServiceAccount(cluster, "plain");

    const injected = await createUntilInjected(cluster, "web", "x");
    const spec = injected.spec as Obj;
    const mca = (spec.initContainers as Obj[])[0];
    assert.equal(mca.image, "mca-e2e:chart", "the chart's sidecar image");
    assert.equal(
      ((mca.resources as Obj).limits as Obj).memory,
      "300Mi",
      "the chart's sidecar memory limit",
    );
    // The same Pod as mca --inject with the chart's flags, stored unlabelled.
    const cli = await createStored(
      cluster,
      injectManifests(podYaml("cli", "plain"), {
        image: "mca-e2e:chart",
        memoryLimit: "300Mi",
      }),
    );
    assert.deepEqual(
      withoutServiceAccountVolume(spec),
      withoutServiceAccountVolume(cli.spec as Obj),
      "the chart's webhook and mca --inject give the same Pod spec",
    );

    const plain = await createStored(cluster, podYaml("untouched", "plain"));
    assert.deepEqual(containerNames((plain.spec as Obj).initContainers), []);
    assert.equal(
      ((plain.spec as Obj).containers as Obj[])[0].env as unknown,
      undefined,
    );

    const optedOut = await createStored(
      cluster,
      podYaml(
        "opted-out",
        "x",
        "  labels: {mca.io/inject: disabled}\n",
      ),
    );
    assert.deepEqual(
      containerNames((optedOut.spec as Obj).initContainers),
      [],
    );

    // Neither reached the webhook: the selectors left them out (the webhook
    // would also skip the opted-out Pod itself, so only its log tells).
    const marker = await createUntilInjected(cluster, "marker", "x");
    const markerName = String((marker.metadata as Obj).name);
    const logDeadline = Date.now() + 10_000;
    let log = "";
    while (!log.includes(`"pod":"${markerName}"`)) {
      assert.ok(Date.now() < logDeadline, `no admission log for ${markerName}`);
      await new Promise((r) => setTimeout(r, 100));
      log = await Deno.readTextFile(hook.log).catch(() => "");
    }
    assert.ok(!log.includes(`"pod":"opted-out"`), "opted-out Pod was sent");
    assert.ok(!log.includes(`"pod":"untouched"`), "unlabelled Pod was sent");

    const dry = await cluster.kubectl([
      "apply",
      "--dry-run=server",
      "-o",
      "json",
      "-f",
      "-",
    ], { stdin: podYaml("dry", "x") });
    assert.equal(
      containerNames((JSON.parse(dry.stdout).spec as Obj).initContainers)[0],
      "mca",
    );
    const notStored = await k(["get", "pod", "dry", "-n", "x"]);
    assert.notEqual(notStored.code, 0, "a dry run stores nothing");

    const uninstall = await h(["uninstall", "mca", "-n", "mca-system"]);
    assert.equal(uninstall.code, 0, uninstall.stderr);
    const gone = await k(["get", "mutatingwebhookconfiguration", "mca"]);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /NotFound/);
    // Once the API server's informer drops it, new Pods are left alone.
    const deadline = Date.now() + 20_000;
    for (let i = 0;; i++) {
      const r = await cluster.kubectl(["create", "-o", "json", "-f", "-"], {
        stdin: podYaml(`after-${i}`, "x"),
      });
      const stored = JSON.parse(r.stdout) as Obj;
      if (containerNames((stored.spec as Obj).initContainers).length === 0) {
        break;
      }
      assert.ok(Date.now() < deadline, "Pods still injected after uninstall");
      await new Promise((r) => setTimeout(r, 200));
    }

    // The plain manifests: the API server refuses the placeholder caBundle,
    // and accepts every object once it is replaced (server-side dry run; the
    // namespace mca-system is still there after the uninstall).
    const manifests = await Deno.readTextFile(
      join(ROOT, "deploy", "manifests", "mca.yaml"),
    );
    const apply = (text: string) =>
      k(["apply", "--dry-run=server", "-f", "-"], text);
    const refused = await apply(manifests);
    assert.notEqual(refused.code, 0, "the placeholder caBundle was accepted");
    assert.match(refused.stderr, /base64/);
    assert.ok(
      manifests.includes("REPLACE-WITH-BASE64-OF-THE-CA-PEM"),
      "the placeholder is in mca.yaml",
    );
    const filled = await apply(
      manifests.replaceAll(
        "REPLACE-WITH-BASE64-OF-THE-CA-PEM",
        btoa(ca.certPem),
      ),
    );
    assert.equal(filled.code, 0, filled.stderr);
    for (
      const object of [
        "serviceaccount/mca",
        "service/mca",
        "deployment.apps/mca",
        "poddisruptionbudget.policy/mca",
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/mca",
      ]
    ) {
      assert.match(
        filled.stdout,
        new RegExp(`${object} created \\(server dry run\\)`),
      );
    }
  } finally {
    await hook.stop();
    await cluster.stop();
  }
});
