// @kubernetes/client-node side of the multi-cluster real-tier test. Runs in
// the app container of a simulated Pod with nothing but `kc.loadFromCluster()`
// (so every call goes through mca) and prints one JSON line per result:
//
//   mc.mjs list NS            {"rv", "items": [{"name", "cluster"}]}
//   mc.mjs create NS SPEC...  one {"name", "cluster"} per SPEC (`name` or `name:k=v,k2=v2`)
//   mc.mjs watch NS           list, then {"ready": true, "rv"}, then one
//                             {"type", "name", "cluster", "rv"} per event
//
// The library is the one `tests/e2e/sdk/client-node/build.sh` installed: its
// app directory comes in MCA_CLIENT_NODE_APP (this file lives elsewhere, so a
// bare import would not find it).
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const app = process.env.MCA_CLIENT_NODE_APP;
if (!app) throw new Error("MCA_CLIENT_NODE_APP is not set");
const k8s = await import(
  pathToFileURL(
    join(app, "node_modules", "@kubernetes", "client-node", "dist", "index.js"),
  ).href
);

const CLUSTER_ANNOTATION = "mca.io/cluster";

function emit(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}

function clusterOf(obj) {
  return obj?.metadata?.annotations?.[CLUSTER_ANNOTATION] ?? null;
}

const kc = new k8s.KubeConfig();
kc.loadFromCluster();
const core = kc.makeApiClient(k8s.CoreV1Api);
const [cmd, namespace, ...rest] = process.argv.slice(2);

if (cmd === "list") {
  const list = await core.listNamespacedConfigMap({ namespace });
  emit({
    rv: list.metadata?.resourceVersion,
    items: list.items.map((cm) => ({
      name: cm.metadata.name,
      cluster: clusterOf(cm),
    })),
  });
} else if (cmd === "create") {
  for (const spec of rest) {
    const [name, labelsText = ""] = spec.split(":");
    const labels = Object.fromEntries(
      labelsText.split(",").filter(Boolean).map((kv) => kv.split("=")),
    );
    const cm = await core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: {
          name,
          ...(Object.keys(labels).length ? { labels } : {}),
        },
        data: { "made-by": "client-node" },
      },
    });
    emit({ name: cm.metadata.name, cluster: clusterOf(cm) });
  }
} else if (cmd === "watch") {
  const list = await core.listNamespacedConfigMap({ namespace });
  const rv = list.metadata.resourceVersion;
  emit({ ready: true, rv });
  await new k8s.Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/configmaps`,
    { resourceVersion: rv, timeoutSeconds: 120 },
    (type, obj) => {
      if (type === "ERROR") return emit({ type, object: obj });
      emit({
        type,
        name: obj.metadata.name,
        cluster: clusterOf(obj),
        rv: obj.metadata.resourceVersion,
      });
    },
    (err) => {
      emit({ ended: true, error: err ? String(err?.message ?? err) : null });
      process.exit(0);
    },
  );
} else {
  throw new Error(`unknown command ${cmd}`);
}
