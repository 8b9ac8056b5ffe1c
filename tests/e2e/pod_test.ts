/**
 * Checks the simulated pods of tests/support/pod.ts: what a container of an
 * injected Pod sees (files at the standard service-account path, the
 * kubelet's env, read-only mounts) and that the host is left untouched.
 * Needs root (mount namespaces); no cluster.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { injectManifests } from "../../lib/inject/manifest.ts";
import {
  kubeletServiceEnv,
  podCommand,
  spawnInPod,
  startPodNetwork,
} from "../support/pod.ts";

const TMP_DIR = fileURLToPath(new URL("../../tmp/", import.meta.url));
const SA = "/var/run/secrets/kubernetes.io/serviceaccount";
const SERVICE_ENV = {
  KUBERNETES_SERVICE_HOST: "127.0.0.1",
  KUBERNETES_SERVICE_PORT: "38443",
};

const POD = injectManifests(`
apiVersion: v1
kind: Pod
metadata: { name: demo, namespace: mca-e2e }
spec:
  containers:
    - name: app
      image: example.com/app
      env:
        - { name: GREETING, value: "hi $(KUBERNETES_SERVICE_HOST) $$(x)" }
`);

async function run(
  container: string,
  volumes: Record<string, string>,
  script: string,
  home: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await spawnInPod(POD, container, {
    volumes,
    command: ["/bin/sh", "-c", script],
    serviceEnv: SERVICE_ENV,
    home,
  }).output();
  const d = new TextDecoder();
  return {
    code: out.code,
    stdout: d.decode(out.stdout),
    stderr: d.decode(out.stderr),
  };
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

function hostRunListing(): string[] {
  return [...Deno.readDirSync("/run")].map((e) => e.name).sort();
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("simulated pod: an app container sees mca's SA dir and the kubelet's env", async () => {
  const dir = join(TMP_DIR, `pod-test-${crypto.randomUUID().slice(0, 8)}`);
  const mcaSa = join(dir, "mca-sa");
  const home = join(dir, "home");
  await Deno.mkdir(mcaSa, { recursive: true });
  await Deno.mkdir(home, { recursive: true });
  await Deno.writeTextFile(join(mcaSa, "token"), "mca-placeholder-token");
  await Deno.writeTextFile(join(mcaSa, "namespace"), "mca-e2e");
  const runBefore = hostRunListing();
  const secretsBefore = exists("/run/secrets");

  const result = await run(
    "app",
    { "kube-api-access-mca-sa": mcaSa },
    `cat ${SA}/token; echo; echo ---; env; echo ---; ` +
      `if touch ${SA}/x 2>/dev/null; then echo writable; else echo read-only; fi`,
    home,
  );
  assert.equal(result.code, 0, result.stderr);
  const [token, envText, ro] = result.stdout.split("---\n");
  assert.equal(token.trim(), "mca-placeholder-token");
  assert.equal(ro.trim(), "read-only");
  const env = parseEnv(envText);
  // The injected env overrides the kubelet's two variables; the link
  // variables still point at the real API server, as in a cluster.
  assert.equal(env.KUBERNETES_SERVICE_HOST, "127.0.0.1");
  assert.equal(env.KUBERNETES_SERVICE_PORT, "6443");
  assert.equal(env.KUBERNETES_SERVICE_PORT_HTTPS, "38443");
  assert.equal(env.KUBERNETES_PORT, "tcp://127.0.0.1:38443");
  assert.equal(env.KUBERNETES_PORT_443_TCP, "tcp://127.0.0.1:38443");
  assert.equal(env.KUBERNETES_PORT_443_TCP_PROTO, "tcp");
  assert.equal(env.KUBERNETES_PORT_443_TCP_PORT, "38443");
  assert.equal(env.KUBERNETES_PORT_443_TCP_ADDR, "127.0.0.1");
  assert.equal(env.GREETING, "hi 127.0.0.1 $(x)");
  assert.equal(env.HOME, home);
  assert.equal(env.LANG, "C.UTF-8");
  assert.ok(env.PATH.includes("/usr/bin"));

  // The host is untouched: /run/secrets is as it was before the test
  // (absent or present: other software may own it), nothing added to /run.
  assert.equal(exists("/run/secrets"), secretsBefore);
  assert.deepEqual(hostRunListing(), runBefore);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("simulated pod: the mca container sees the real env and its three volumes", async () => {
  const dir = join(TMP_DIR, `pod-test-${crypto.randomUUID().slice(0, 8)}`);
  const vols = {
    "kube-api-access-sa": join(dir, "sa"),
    "kube-api-access-mca-sa": join(dir, "mca-sa"),
    "mca-state": join(dir, "state"),
  };
  for (const d of [...Object.values(vols), join(dir, "home")]) {
    await Deno.mkdir(d, { recursive: true });
  }
  await Deno.writeTextFile(join(vols["kube-api-access-sa"], "token"), "real");
  const hadVarLibMca = exists("/var/lib/mca");

  const result = await run(
    "mca",
    vols,
    [
      `cat ${SA}/token; echo`,
      "echo written > /var/run/secrets/kubernetes.io/mca-serviceaccount/ca.crt",
      "echo key > /var/lib/mca/ca.key",
      "echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT",
      `if touch ${SA}/x 2>/dev/null; then echo writable; else echo read-only; fi`,
    ].join("\n"),
    join(dir, "home"),
  );
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.stdout.trim().split("\n"), [
    "real",
    "127.0.0.1:38443",
    "read-only",
  ]);
  assert.equal(
    await Deno.readTextFile(join(vols["kube-api-access-mca-sa"], "ca.crt")),
    "written\n",
  );
  assert.equal(
    await Deno.readTextFile(join(vols["mca-state"], "ca.key")),
    "key\n",
  );
  // /var/lib/mca was made in a tmpfs-backed overlay, not on the host.
  assert.equal(exists("/var/lib/mca"), hadVarLibMca);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("simulated pod: missing volumes and unknown containers fail loudly", () => {
  const opts = {
    volumes: {},
    command: ["true"],
    serviceEnv: SERVICE_ENV,
    home: TMP_DIR,
  };
  assert.throws(() => podCommand(POD, "app", opts), /kube-api-access-mca-sa/);
  assert.throws(() => podCommand(POD, "nope", opts), /0 containers named/);
  assert.throws(() => kubeletServiceEnv({}), /KUBERNETES_SERVICE_HOST/);
});

Deno.test("simulated pod: a Pod network has its own loopback and reaches forwarded host ports", async () => {
  const dir = join(TMP_DIR, `pod-test-${crypto.randomUUID().slice(0, 8)}`);
  const mcaSa = join(dir, "mca-sa");
  await Deno.mkdir(mcaSa, { recursive: true });
  // A host server the Pod may reach, and one it must not.
  const reachable = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("from the host"),
  );
  const hidden = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const net = await startPodNetwork({
    dir: join(dir, "net"),
    forward: [{ host: "127.0.0.1", port: reachable.addr.port }],
  });
  try {
    // A listener inside the Pod on a port the host also uses: no clash.
    const script = [
      `${JSON.stringify(Deno.execPath())} eval '`,
      `const l = Deno.listen({ hostname: "127.0.0.1", port: ${hidden.addr.port} });`,
      `const r = await fetch("http://127.0.0.1:${reachable.addr.port}/");`,
      `console.log(await r.text());`,
      `l.close();'`,
    ].join(" ");
    const out = await spawnInPod(POD, "app", {
      volumes: { "kube-api-access-mca-sa": mcaSa },
      command: ["/bin/sh", "-c", script],
      serviceEnv: SERVICE_ENV,
      home: dir,
      netns: net.nsPath,
    }).output();
    const d = new TextDecoder();
    assert.equal(out.code, 0, d.decode(out.stderr));
    assert.equal(d.decode(out.stdout).trim(), "from the host");
  } finally {
    await net.close();
    hidden.close();
    await reachable.shutdown();
  }
  await Deno.remove(dir, { recursive: true });
});
