// SDK-matrix program for @kubernetes/client-node. Uses only
// `kc.loadFromCluster()` (no server, CA, token or namespace configured here)
// and prints one JSON line per operation:
//   {"op": "...", "ok": true|false, "detail": "..."}
// Exits 0 even when an operation fails; non-zero only on a crash.
import { readFileSync } from "node:fs";
import * as k8s from "@kubernetes/client-node";

const NAME = "client-node";
const SEED = `sdk-${NAME}-seed`;
const OBJ = `sdk-${NAME}-x`;
const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

function emit(op, ok, detail) {
  process.stdout.write(
    JSON.stringify({ op, ok: Boolean(ok), detail: String(detail) }) + "\n",
  );
}

function statusOf(error) {
  let body = error?.body;
  if (typeof body === "string") {
    try {
      body = JSON.parse(body);
    } catch {
      // keep the text
    }
  }
  return { code: error?.code, body };
}

function describe(error) {
  if (error instanceof k8s.ApiException) {
    const { code, body } = statusOf(error);
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return `HTTP ${code}: ${String(text).slice(0, 300)}`;
  }
  return `${error?.name ?? "Error"}: ${error?.message ?? error}${
    error?.cause ? ` (cause: ${error.cause?.message ?? error.cause})` : ""
  }`;
}

// Each operation gets 30 s, so a hung request fails its operation instead
// of the whole program (the SDK's own timeouts are left at their defaults).
const OP_TIMEOUT_MS = 30_000;

async function run(op, fn) {
  let ok, detail, timer;
  try {
    [ok, detail] = await Promise.race([
      fn(),
      new Promise((resolve) => {
        timer = setTimeout(
          () => resolve([false, `no answer within ${OP_TIMEOUT_MS / 1000} s`]),
          OP_TIMEOUT_MS,
        );
      }),
    ]);
  } catch (error) {
    [ok, detail] = [false, describe(error)];
  } finally {
    clearTimeout(timer);
  }
  emit(op, ok, detail);
}

const kc = new k8s.KubeConfig();
kc.loadFromCluster();
const ns = readFileSync(`${SA_DIR}/namespace`, "utf8").trim();
const wantUser = `system:serviceaccount:${ns}:${process.env.MCA_E2E_SA ?? ""}`;
const core = kc.makeApiClient(k8s.CoreV1Api);
const authn = kc.makeApiClient(k8s.AuthenticationV1Api);
const merge = k8s.setHeaderOptions(
  "Content-Type",
  k8s.PatchStrategy.MergePatch,
);

await run("whoami", async () => {
  const review = await authn.createSelfSubjectReview({
    body: {
      apiVersion: "authentication.k8s.io/v1",
      kind: "SelfSubjectReview",
    },
  });
  const user = review.status?.userInfo?.username;
  return [user === wantUser, user];
});

await run("get", async () => {
  const cm = await core.readNamespacedConfigMap({ name: SEED, namespace: ns });
  return [cm.metadata?.name === SEED, cm.metadata?.name];
});

await run("list", async () => {
  const list = await core.listNamespacedConfigMap({ namespace: ns });
  const names = list.items.map((cm) => cm.metadata?.name);
  const has = names.includes(SEED);
  return [
    has,
    `${names.length} configmaps, seed ${has ? "included" : "missing"}`,
  ];
});

await run("create", async () => {
  const cm = await core.createNamespacedConfigMap({
    namespace: ns,
    body: {
      metadata: { name: OBJ, labels: { sdk: NAME } },
      data: { k: "v1" },
    },
  });
  return [cm.metadata?.name === OBJ, cm.metadata?.name];
});

await run("patch-merge", async () => {
  const cm = await core.patchNamespacedConfigMap(
    { name: OBJ, namespace: ns, body: { data: { k: "v2" } } },
    merge,
  );
  return [cm.data?.k === "v2", `data.k=${cm.data?.k}`];
});

await run("apply", async () => {
  const cm = await core.patchNamespacedConfigMap(
    {
      name: OBJ,
      namespace: ns,
      fieldManager: `mca-e2e-${NAME}`,
      body: {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: OBJ, labels: { sdk: NAME } },
        data: { applied: "yes" },
      },
    },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.ServerSideApply),
  );
  return [cm.data?.applied === "yes", `data.applied=${cm.data?.applied}`];
});

await run("watch", () =>
  // The initial ADDED of our object shows the watch is streaming; a patch
  // made concurrently must then come back as MODIFIED within 20 s.
  new Promise((resolve, reject) => {
    const seen = [];
    let patched = false;
    let controller;
    let settled = false;
    const finish = (result, error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      controller?.abort();
      if (error) reject(error);
      else resolve(result);
    };
    const timer = setTimeout(
      () =>
        finish([
          false,
          `no MODIFIED event within 20 s; saw: ${seen.join(", ")}`,
        ]),
      20_000,
    );
    new k8s.Watch(kc).watch(
      `/api/v1/namespaces/${ns}/configmaps`,
      { labelSelector: `sdk=${NAME}` },
      (type, obj) => {
        const line = `${type} ${obj?.metadata?.name} ${obj?.data?.k}`;
        seen.push(line);
        if (type === "ADDED" && obj?.metadata?.name === OBJ && !patched) {
          patched = true;
          core.patchNamespacedConfigMap(
            { name: OBJ, namespace: ns, body: { data: { k: "v3" } } },
            merge,
          ).catch((error) => finish(undefined, error));
        } else if (
          type === "MODIFIED" && obj?.metadata?.name === OBJ &&
          obj?.data?.k === "v3"
        ) {
          finish([true, line]);
        }
      },
      (error) => {
        if (error) finish(undefined, error);
        else finish([false, `watch ended; saw: ${seen.join(", ")}`]);
      },
    ).then((c) => {
      controller = c;
      if (settled) c.abort();
    }, (error) => finish(undefined, error));
  }));

await run("delete", async () => {
  await core.deleteNamespacedConfigMap({ name: OBJ, namespace: ns });
  return [true, "deleted"];
});

await run("forbidden", async () => {
  try {
    await core.listNamespacedSecret({ namespace: ns });
  } catch (error) {
    if (!(error instanceof k8s.ApiException)) {
      return [false, `not an API error: ${describe(error)}`];
    }
    const { code, body } = statusOf(error);
    const reason = typeof body === "object" ? body?.reason : undefined;
    return [code === 403 && reason === "Forbidden", `${code} ${reason}`];
  }
  return [false, "listing secrets succeeded"];
});

// A request stuck past its operation's timeout must not keep Node alive.
process.exit(0);
