/**
 * The Helm chart installed into the node tier's apiserver: its webhook
 * Deployment's Pods run `mca --webhook` from `localhost/mca:dev` on the real
 * kubelet, and the apiserver calls them at their Pod IP. Nothing here runs
 * the webhook as a host process.
 *
 * Two parts of a cluster are missing on this node and stood in for honestly:
 * - no kube-scheduler: {@linkcode bindPending} does the one thing a scheduler
 *   does last, a `pods/binding` to the only node, for each Pod of the
 *   chart's namespace that has none (the Pods are the Deployment's own,
 *   made by the real deployment and replicaset controllers);
 * - no kube-proxy: the apiserver runs with `--enable-aggregator-routing`,
 *   which makes its Service resolver (webhooks included) pick a ready
 *   endpoint of the Service's EndpointSlices (the real endpointslice
 *   controller) and dial the Pod IP, on the harness's own bridge.
 *
 * @module
 */

import assert from "node:assert/strict";
import { MCA_IMAGE } from "../../deploy/image/build.ts";
import { CHART_DIR, helm } from "./helm.ts";
import { type Node, NODE_IP, NODE_NAME } from "./node.ts";
import { APP_IMAGE, parseLog, until } from "./node_apps.ts";
import { type Obj, waitForDefaultServiceAccount } from "./webhook.ts";

/** The chart's release namespace. */
export const HOOK_NS = "mca-system";
/** The namespace labelled `mca.io/inject=enabled`. */
export const INJECT_NS = "mca-hooked";

/** `helm install` of the chart: one webhook Pod, images imported, never pulled. */
export async function installChart(node: Node, dir: string): Promise<void> {
  const [repository, tag] = MCA_IMAGE.split(":");
  await helm([
    "install",
    "mca",
    CHART_DIR,
    "--namespace",
    HOOK_NS,
    "--create-namespace",
    "--kubeconfig",
    node.cluster.adminKubeconfig,
    "--set",
    `image.repository=${repository}`,
    "--set",
    `image.tag=${tag}`,
    "--set",
    "image.pullPolicy=Never",
    "--set",
    "sidecar.imagePullPolicy=Never",
    "--set",
    "replicas=1",
  ], { home: dir });
}

// deno-lint-ignore no-explicit-any -- Pod JSON from kubectl
type Pod = any;

async function hookPods(node: Node): Promise<Pod[]> {
  const r = await node.cluster.kubectl([
    "get",
    "pods",
    "-n",
    HOOK_NS,
    "-o",
    "json",
  ]);
  return JSON.parse(r.stdout).items;
}

/** Binds each unbound Pod of the chart's namespace to the node. */
export async function bindPending(node: Node): Promise<number> {
  let bound = 0;
  for (const pod of await hookPods(node)) {
    if (pod.spec.nodeName || pod.metadata.deletionTimestamp) continue;
    const binding = {
      apiVersion: "v1",
      kind: "Binding",
      metadata: { name: pod.metadata.name, namespace: HOOK_NS },
      target: { apiVersion: "v1", kind: "Node", name: NODE_NAME },
    };
    await node.cluster.kubectl(["create", "-f", "-"], {
      stdin: JSON.stringify(binding),
    });
    bound++;
  }
  return bound;
}

/**
 * Binds the Deployment's Pods and waits (120 s bound) until one is ready on
 * the node and is the ready endpoint of the webhook's EndpointSlice;
 * returns that Pod.
 */
export async function webhookRunning(node: Node): Promise<Pod> {
  let pod: Pod | undefined;
  await until("a ready webhook Pod behind the Service", 120_000, async () => {
    await bindPending(node);
    pod = (await hookPods(node)).find((p) =>
      (p.status.conditions ?? []).some((c: Obj) =>
        c.type === "Ready" && c.status === "True"
      )
    );
    if (!pod) return false;
    const slices = JSON.parse(
      (await node.cluster.kubectl([
        "get",
        "endpointslices",
        "-n",
        HOOK_NS,
        "-l",
        "kubernetes.io/service-name=mca",
        "-o",
        "json",
      ])).stdout,
    ).items as Pod[];
    return slices.some((s) =>
      (s.endpoints ?? []).some((e: Pod) =>
        e.conditions?.ready && e.addresses.includes(pod.status.podIP)
      )
    );
  }).catch(async (error) => {
    const pods = await hookPods(node).catch(() => []);
    throw new Error(
      `${error.message}: ${
        JSON.stringify(pods.map((p) => p.status))
      }\n${await node
        .logTails()}`,
    );
  });
  assert.equal(pod.spec.nodeName, NODE_NAME);
  assert.equal(pod.status.hostIP, NODE_IP);
  const webhook = pod.status.containerStatuses[0];
  assert.equal(webhook.image, MCA_IMAGE);
  assert.ok(webhook.state.running, JSON.stringify(webhook));
  return pod;
}

/** The labelled namespace, its `default` ServiceAccount allowed to read ConfigMaps. */
export async function labelledNamespace(node: Node): Promise<void> {
  const k = (args: string[]) => node.cluster.kubectl(args);
  await k(["create", "namespace", INJECT_NS]);
  await k(["label", "namespace", INJECT_NS, "mca.io/inject=enabled"]);
  await waitForDefaultServiceAccount(node.cluster, INJECT_NS);
  await k([
    "create",
    "role",
    "reader",
    "-n",
    INJECT_NS,
    "--verb=get,list",
    "--resource=configmaps",
  ]);
  await k([
    "create",
    "rolebinding",
    "reader",
    "-n",
    INJECT_NS,
    "--role=reader",
    `--serviceaccount=${INJECT_NS}:default`,
  ]);
}

/** A plain Pod (no --inject): a kubectl that lists ConfigMaps, one refused. */
export function plainPod(name: string): string {
  const container = (n: string, args: string[]) => ({
    name: n,
    image: APP_IMAGE,
    imagePullPolicy: "Never",
    args,
  });
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: INJECT_NS },
    spec: {
      nodeName: NODE_NAME,
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 5,
      containers: [
        container("lister", ["get", "configmaps", "-o", "name"]),
        container("forbidden", ["get", "secrets"]),
      ],
    },
  });
}

/**
 * `kubectl create` of {@linkcode plainPod} until the apiserver's webhook
 * call succeeds (30 s bound: its informers may not have the Service's
 * endpoint yet); returns the Pod as stored.
 */
export async function createThroughWebhook(
  node: Node,
  name: string,
): Promise<Pod> {
  let last = "";
  let stored: Pod | undefined;
  await until(
    "the apiserver to admit the Pod via the webhook",
    30_000,
    async () => {
      const r = await node.cluster.kubectl(
        ["create", "-o", "json", "-f", "-"],
        {
          stdin: plainPod(name),
          check: false,
        },
      );
      last = r.stderr;
      if (r.code === 0) stored = JSON.parse(r.stdout);
      return r.code === 0;
    },
  ).catch((error) => {
    throw new Error(`${error.message}; last refusal: ${last}`);
  });
  return stored;
}

/** kubectl in `INJECT_NS`, for logs and status of the injected Pod. */
function inNs(node: Node, args: string[]) {
  return node.cluster.kubectl([...args, "-n", INJECT_NS], { check: false });
}

/**
 * A plain Pod created in the labelled namespace is stored with the sidecar
 * (by the webhook Pod: the only webhook this apiserver has), runs on the
 * node, and its apps' calls go through that sidecar (200 and 403 in mca's
 * log, as the namespace's `default` ServiceAccount).
 */
export async function plainPodInjected(node: Node): Promise<void> {
  const stored = await createThroughWebhook(node, "plain");
  const mca = stored.spec.initContainers?.[0];
  assert.equal(mca?.name, "mca", JSON.stringify(stored.spec));
  assert.equal(mca.image, MCA_IMAGE);
  assert.equal(mca.restartPolicy, "Always");
  for (const c of stored.spec.containers) {
    assert.ok(
      c.env.some((e: Obj) =>
        e.name === "KUBERNETES_SERVICE_HOST" && e.value === "127.0.0.1"
      ),
      c.name,
    );
  }
  let pod: Pod = stored;
  await until("the injected plain Pod to finish", 120_000, async () => {
    pod = JSON.parse(
      (await inNs(node, ["get", "pod", "plain", "-o", "json"]))
        .stdout,
    );
    return ["Succeeded", "Failed"].includes(pod.status.phase);
  });
  const logs = async (c: string) => {
    const r = await inNs(node, ["logs", "plain", "-c", c]);
    return r.stdout + r.stderr;
  };
  const why = JSON.stringify(pod.status) + "\nmca: " + await logs("mca");
  const state = (n: string) =>
    pod.status.containerStatuses.find((c: Obj) => c.name === n).state;
  assert.equal(state("lister").terminated?.exitCode, 0, why);
  assert.match(await logs("lister"), /configmap\/kube-root-ca\.crt/, why);
  assert.equal(state("forbidden").terminated?.exitCode, 1, why);
  // Refused as the Pod's own ServiceAccount, which the apiserver names.
  assert.match(
    await logs("forbidden"),
    new RegExp(`[Ff]orbidden.*system:serviceaccount:${INJECT_NS}:default`),
    why,
  );
  const calls = parseLog(await logs("mca")).filter((c) => c.msg === "api call");
  const sa = `namespaces/${INJECT_NS}/`;
  assert.ok(
    calls.some((c) =>
      c.resource === "configmaps" && c.status === 200 &&
      String(c.path).includes(sa)
    ),
    why,
  );
  assert.ok(
    calls.some((c) => c.resource === "secrets" && c.status === 403),
    why,
  );
  assert.equal(pod.spec.nodeName, NODE_NAME);
}

/**
 * The webhook Deployment scaled to 0: the apiserver has no endpoint to call,
 * so a Pod of the labelled namespace is refused (`failurePolicy: Fail`).
 * This is what shows the injection came from the webhook Pod and nothing
 * else. Returns the refusal kubectl printed.
 */
export async function refusedWithoutWebhook(node: Node): Promise<string> {
  await node.cluster.kubectl([
    "scale",
    "deployment",
    "mca",
    "-n",
    HOOK_NS,
    "--replicas=0",
  ]);
  await until(
    "the webhook Pod to be gone",
    60_000,
    async () => (await hookPods(node)).length === 0,
  );
  let refusal = "";
  let name = "";
  for (let i = 0; name === ""; i++) {
    const r = await node.cluster.kubectl(["create", "-f", "-"], {
      stdin: plainPod(`refused-${i}`),
      check: false,
    });
    refusal = r.stderr;
    // Admitted by a webhook Pod the apiserver still had: try again.
    if (r.code !== 0) name = `refused-${i}`;
    else assert.ok(i < 30, "Pods are still admitted with no webhook Pod");
    if (r.code === 0) await new Promise((r) => setTimeout(r, 1000));
  }
  assert.match(refusal, /failed calling webhook "inject\.mca\.io"/);
  const stored = await inNs(node, ["get", "pod", name]);
  assert.notEqual(stored.code, 0, "a refused Pod was stored");
  return refusal;
}
