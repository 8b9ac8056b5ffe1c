/**
 * Phase 2 real tier: multi-cluster routing through `mca` with two real
 * control planes (etcd + kube-apiserver + KCM each, `tests/support/cluster.ts`).
 *
 * - cluster A is the Pod's own cluster (`local`): `mca` runs in the `mca`
 *   container of an injected Pod with A's real service-account directory;
 * - cluster B is `east`: a kubeconfig in `mca`'s clusters directory (a
 *   Secret-like projected volume) holding a token minted on B for B's
 *   ServiceAccount `app`;
 * - the routing rules are a ConfigMap-like projected volume, replaced the
 *   way the kubelet does it (an atomic rename of the `..data` symlink).
 *
 * kubectl, the Python client and @kubernetes/client-node run in the Pod's
 * `app` container with their in-cluster configuration only, so every call
 * goes through `mca`; their small programs are in `tests/e2e/multicluster/`.
 * Admin kubectl on each cluster (not through `mca`) checks where objects
 * landed.
 *
 * Steps: (1) a merged LIST across both clusters, each object marked with its
 * cluster; (2) creates routed by round-robin, by namespace and by labels;
 * (3) merged WATCHes that see events of both clusters; (4) failover when B's
 * kube-apiserver stops (a merged LIST is then a 503 naming B) and recovery
 * when it returns; (5) two client-go informers (LIST+WATCH and watch-list)
 * through another stop and start of B: 0 lost, 0 false DELETE; (6) reloads of the
 * routing file and the clusters Secret under load, invalid versions
 * (unknown cluster, bad selector, bad glob, broken kubeconfig) rejected
 * with file and line while the last good one serves, no failed call;
 * (7) client-go's typed clients with their default protobuf bodies on the
 * spread set and in a namespace-mapped namespace; (8) every call line of
 * the log names its cluster and no line holds a
 * token. A failed step stops the run; everything is stopped in any case and
 * the logs of a failed run are kept under `tmp/e2e/multicluster-*`.
 *
 * Needs root (simulated pods), the toolchain and the kubectl, python and
 * client-node SDKs of the matrix (built on first use, cached after).
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { injectManifests } from "../../lib/inject/manifest.ts";
import { decodeResourceVersion } from "../../lib/kube/resource_version.ts";
import {
  type Cluster,
  DEFAULT_ROLE_RULES,
  ensureToolchain,
  startCluster,
  writeProjectedVolume,
} from "../support/cluster.ts";
import {
  parsePod,
  type PodNetwork,
  spawnInPod,
  startPodNetwork,
} from "../support/pod.ts";
import {
  buildSdk,
  callLines,
  mcaContainer,
  type McaProcess,
  mcaProxyArgs,
  readLines,
  startMca,
  stopMca,
  waitReady,
} from "../support/mca_pod.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TMP_E2E = join(ROOT, "tmp", "e2e");
const SCRIPTS = fileURLToPath(new URL("./multicluster/", import.meta.url));

const NS = "mca-e2e";
/** Step 7's namespace-mapped namespace: the app's, and east's behind it. */
const PB_APP = "pb-app";
const PB_REMOTE = "pb-remote";
/** The protobuf media type client-go's typed clients send and prefer. */
const PROTOBUF = "application/vnd.kubernetes.protobuf";
const CLUSTERS_MOUNT = "/etc/mca/clusters";
const ROUTING_MOUNT = "/etc/mca/routing";
const ROUTING_FILE = `${ROUTING_MOUNT}/routing.yaml`;
const HEALTH_INTERVAL_MS = 500;
const CLUSTER_ANNOTATION = "mca.io/cluster";
const REJECTED = "routing configuration rejected; keeping the previous one";

/** The rules in force at start (version 1: five rules). */
const ROUTING_V1 = `# multicluster e2e: routing version 1
discovery: local
default: local
rules:
  - name: by-label
    match: {labels: "placement=east"}
    cluster: east
  - name: team-east
    match: {namespaces: [team-east]}
    cluster: east
  - name: ha
    match: {namespaces: [ha]}
    clusters: [east, local]
    strategy: first-healthy
  - name: spread
    match: {namespaces: [${NS}]}
    clusters: [local, east]
    strategy: round-robin
  - name: mapped
    match: {namespaces: [${PB_APP}]}
    cluster: east
    namespace: ${PB_REMOTE}
`;
/** Version 2: a fifth rule sends namespace probe-ns to east (v1: default, local). */
const ROUTING_V2 = ROUTING_V1.replace("version 1", "version 2") +
  `  - name: probe
    match: {namespaces: [probe-ns]}
    cluster: east
`;
/** Invalid: version 2 with a cluster nobody knows. */
const ROUTING_BAD = ROUTING_V2.replace("version 2", "an invalid version")
  .replace(/cluster: east\n$/, "cluster: north\n");
const BAD_LINE = ROUTING_BAD.split("\n").indexOf("    cluster: north") + 1;

const started = performance.now();
function progress(message: string): void {
  const s = ((performance.now() - started) / 1000).toFixed(1);
  console.error(`multicluster-e2e [${s}s]: ${message}`);
}

type Truthy<T> = Exclude<T, false | 0 | "" | null | undefined>;

/** Polls `check` every 50 ms until it returns a truthy value; fails after `ms`. */
async function until<T>(
  what: string,
  ms: number,
  check: () => T | Promise<T>,
  detail: () => string = () => "",
): Promise<Truthy<T>> {
  const deadline = Date.now() + ms;
  while (true) {
    const value = await check();
    if (value) return value as Truthy<T>;
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${ms} ms waiting for ${what}\n${detail()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

// deno-lint-ignore no-explicit-any
type Json = any;

function parseJsonLines(lines: string[]): Json[] {
  const out: Json[] = [];
  for (const line of lines) {
    if (!line.trim().startsWith("{")) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // not a result line
    }
  }
  return out;
}

function seconds(isoTime: string): number {
  return Date.parse(isoTime) / 1000;
}

// ---------------------------------------------------------------------------
// Programs in the app container

/** What every process of the app container shares. */
interface AppContainer {
  pod: Record<string, unknown>;
  volumes: Record<string, string>;
  serviceEnv: Record<string, string>;
  home: string;
  netns: string;
  imageEnv: Record<string, string>;
}

/** A program in the app container, its output collected as it comes. */
interface AppProcess {
  name: string;
  child: Deno.ChildProcess;
  lines: string[];
  stderr: string[];
  /** The stdout lines that are JSON objects. */
  json(): Json[];
  exited: Promise<Deno.CommandStatus>;
  done: Promise<void>;
  /** Closes stdin (the load program then finishes). */
  closeStdin(): Promise<void>;
  kill(): Promise<void>;
  /** Its output, for an error message. */
  dump(): string;
}

/** Every program started and not yet reaped, killed at the end whatever happens. */
const running = new Set<AppProcess>();

function startApp(
  app: AppContainer,
  name: string,
  command: string[],
  stdin = false,
): AppProcess {
  const child = spawnInPod(app.pod, "app", {
    volumes: app.volumes,
    command,
    serviceEnv: app.serviceEnv,
    home: app.home,
    netns: app.netns,
    imageEnv: app.imageEnv,
  }, { stdin: stdin ? "piped" : "null", stdout: "piped", stderr: "piped" });
  const proc: AppProcess = {
    name,
    child,
    lines: [],
    stderr: [],
    json: () => parseJsonLines(proc.lines),
    exited: child.status,
    done: Promise.resolve(),
    async closeStdin() {
      if (stdin) await child.stdin.close().catch(() => {});
    },
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await proc.exited;
      await proc.done;
      running.delete(proc);
    },
    dump: () =>
      `--- ${name} stdout (last 15):\n${
        proc.lines.slice(-15).join("\n")
      }\n--- ${name} stderr (last 40):\n${proc.stderr.slice(-40).join("\n")}`,
  };
  proc.done = Promise.all([
    readLines(child.stdout, (l) => proc.lines.push(l)),
    readLines(child.stderr, (l) => proc.stderr.push(l)),
  ]).then(() => {});
  running.add(proc);
  return proc;
}

interface AppResult {
  code: number;
  stdout: string;
  stderr: string;
  json: Json[];
}

/**
 * Runs a program in the app container to its end; a non-zero exit (unless
 * `check` is false) or no end within `timeoutMs` is an error.
 */
async function runApp(
  app: AppContainer,
  name: string,
  command: string[],
  opts: { stdin?: string; timeoutMs?: number; check?: boolean } = {},
): Promise<AppResult> {
  const proc = startApp(app, name, command, opts.stdin !== undefined);
  if (opts.stdin !== undefined) {
    const writer = proc.child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(opts.stdin));
    await writer.close();
  }
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill();
  }, timeoutMs);
  const status = await proc.exited;
  await proc.done;
  clearTimeout(timer);
  running.delete(proc);
  if (timedOut) {
    throw new Error(
      `${name}: killed after ${timeoutMs / 1000} s\n${proc.dump()}`,
    );
  }
  if ((opts.check ?? true) && status.code !== 0) {
    throw new Error(`${name} exited with code ${status.code}\n${proc.dump()}`);
  }
  return {
    code: status.code,
    stdout: proc.lines.join("\n"),
    stderr: proc.stderr.join("\n"),
    json: proc.json(),
  };
}

// ---------------------------------------------------------------------------
// Set-up

/** A ClusterRole with the test ServiceAccount's usual rights, for RoleBindings elsewhere. */
const CLUSTER_ROLE = JSON.stringify({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "ClusterRole",
  metadata: { name: "mca-e2e-app" },
  rules: DEFAULT_ROLE_RULES,
});

/** A namespace where ServiceAccount `app` of mca-e2e has its usual rights. */
function namespaceWithAccess(namespace: string): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "List",
    items: [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "app-e2e", namespace },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          name: "mca-e2e-app",
        },
        subjects: [{ kind: "ServiceAccount", name: "app", namespace: NS }],
      },
    ],
  });
}

/**
 * As admin: the extra namespaces, and configmaps whose `data.cluster` says
 * where they live (`only-a`/`only-b` in mca-e2e, `ha-cfg` in ha, `where` in
 * probe-ns).
 */
async function prepareCluster(
  cluster: Cluster,
  name: "local" | "east",
  namespaces: string[],
): Promise<void> {
  await cluster.kubectl(["apply", "-f", "-"], { stdin: CLUSTER_ROLE });
  for (const ns of namespaces) {
    await cluster.kubectl(["apply", "-f", "-"], {
      stdin: namespaceWithAccess(ns),
    });
  }
  const objects: [string, string][] = [
    [NS, name === "local" ? "only-a" : "only-b"],
    ["ha", "ha-cfg"],
    ["probe-ns", "where"],
  ];
  for (const [ns, object] of objects) {
    await cluster.kubectl([
      "create",
      "configmap",
      object,
      "-n",
      ns,
      `--from-literal=cluster=${name}`,
    ]);
  }
}

/** Names of a namespace's configmaps, asked as admin (not through mca). */
async function namesOn(cluster: Cluster, namespace: string): Promise<string[]> {
  const out = await cluster.kubectl([
    "get",
    "configmaps",
    "-n",
    namespace,
    "-o",
    "jsonpath={.items[*].metadata.name}",
  ]);
  return out.stdout.trim().split(/\s+/).filter(Boolean);
}

/** A kubeconfig whose one context, `name`, reaches `cluster` with `token`. */
function kubeconfigFor(
  name: string,
  cluster: Cluster,
  caPem: string,
  token: string,
): string {
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: `${name}-cluster`,
        cluster: {
          server: cluster.url,
          "certificate-authority-data": btoa(caPem),
        },
      }],
      users: [{ name: `${name}-app`, user: { token } }],
      contexts: [{
        name,
        context: {
          cluster: `${name}-cluster`,
          user: `${name}-app`,
          namespace: NS,
        },
      }],
      "current-context": name,
    },
    null,
    2,
  ) + "\n";
}

/**
 * The user's Pod, injected, plus what Phase 2 adds by hand for now (the
 * injector does not yet): the clusters Secret and the routing ConfigMap,
 * mounted into `mca` only.
 */
function phase2Pod(): Record<string, unknown> {
  const pod = parsePod(injectManifests(JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "multicluster-e2e", namespace: NS },
    spec: {
      serviceAccountName: "app",
      containers: [{ name: "app", image: "example.com/multicluster-app:1" }],
    },
  }))) as Json;
  pod.spec.volumes.push(
    { name: "mca-clusters", secret: { secretName: "mca-clusters" } },
    { name: "mca-routing", configMap: { name: "mca-routing" } },
  );
  const mca = [...(pod.spec.initContainers ?? []), ...pod.spec.containers]
    .find((c: Json) => c.name === "mca");
  mca.volumeMounts.push(
    { name: "mca-clusters", mountPath: CLUSTERS_MOUNT, readOnly: true },
    { name: "mca-routing", mountPath: ROUTING_MOUNT, readOnly: true },
  );
  return pod;
}

// ---------------------------------------------------------------------------
// The world the steps run in

interface World {
  /** The Pod's own cluster, `local`. */
  A: Cluster;
  /** The remote cluster, `east`. */
  B: Cluster;
  mca: McaProcess;
  app: AppContainer;
  /** Host directory behind the routing ConfigMap volume. */
  routingDir: string;
  /** Host directory behind the clusters Secret volume. */
  clustersDir: string;
  /** The content of `east.kubeconfig` in it. */
  eastKubeconfig: string;
  /** The real tokens mca holds (A's service account, B's kubeconfig). */
  tokens: { A: string; B: string };
  timings: Record<string, number>;
  /** argv of the python, client-node and kubectl programs. */
  py(...args: string[]): string[];
  js(...args: string[]): string[];
  k(...args: string[]): string[];
  /** argv of the client-go informer program (`tests/e2e/informer/`). */
  informer(...args: string[]): string[];
}

function mcaEvents(w: World): Json[] {
  return parseJsonLines(w.mca.lines);
}

function mcaTail(w: World): string {
  return `--- mca (last 20 lines):\n${w.mca.lines.slice(-20).join("\n")}`;
}

/** Results of `mc.py load`: one per call. */
function loadResults(load: AppProcess): Json[] {
  return load.json().filter((l) => l.i !== undefined);
}

/** Closes the load program's stdin and waits for its last line. */
async function finishLoad(load: AppProcess, detail: () => string) {
  await load.closeStdin();
  await until(
    `${load.name} to finish`,
    10_000,
    () => load.json().some((l) => l.done !== undefined),
    detail,
  );
}

// ---------------------------------------------------------------------------
// Steps

/** 1: kubectl (JSON and table), python and client-node list across both clusters. */
async function listAcross(w: World): Promise<void> {
  const from = w.mca.lines.length;
  const [kJson, kTable, pyList, jsList] = await Promise.all([
    runApp(
      w.app,
      "kubectl -o json",
      w.k("get", "configmaps", "-n", NS, "-o", "json"),
    ),
    runApp(w.app, "kubectl (table)", w.k("get", "configmaps", "-n", NS)),
    runApp(w.app, "python list", w.py("list", NS)),
    runApp(w.app, "client-node list", w.js("list", NS)),
  ]);
  const kItems = JSON.parse(kJson.stdout).items.map((i: Json) => ({
    name: i.metadata.name,
    cluster: i.metadata.annotations?.[CLUSTER_ANNOTATION],
  }));
  const seen: [string, Json[]][] = [
    ["kubectl", kItems],
    ["python", pyList.json[0].items],
    ["client-node", jsList.json[0].items],
  ];
  for (const [who, items] of seen) {
    const only = Object.fromEntries(
      items.filter((i) => i.name.startsWith("only-")).map((i) => [
        i.name,
        i.cluster,
      ]),
    );
    assert.deepEqual(
      only,
      { "only-a": "local", "only-b": "east" },
      `${who} sees the objects of both clusters, each marked with its cluster`,
    );
    const roots = items.filter((i) => i.name === "kube-root-ca.crt")
      .map((i) => i.cluster).sort();
    assert.deepEqual(
      roots,
      ["east", "local"],
      `${who}: kube-root-ca.crt twice`,
    );
  }
  const rows = kTable.stdout.split("\n").map((l) => l.split(/\s+/)[0]);
  assert.equal(rows[0], "NAME", kTable.stdout);
  assert.ok(
    rows.includes("only-a") && rows.includes("only-b"),
    `kubectl's table lacks a cluster's rows:\n${kTable.stdout}`,
  );
  assert.match(pyList.json[0].rv, /^mca\./, "a composite resourceVersion");
  assert.match(jsList.json[0].rv, /^mca\./, "a composite resourceVersion");

  await pagedAcross(w, kItems.map((i: Json) => i.name).sort());

  const lists = callLines(w.mca.lines.slice(from)).filter((c) =>
    c.verb === "list" && c.resource === "configmaps"
  );
  assert.ok(lists.length >= 4, JSON.stringify(lists));
  for (const c of lists) {
    assert.equal(c.status, 200, JSON.stringify(c));
    assert.equal(c.cluster, "local+east", JSON.stringify(c));
  }
}

/**
 * 1, paged: python (limit 2, following `continue`) and kubectl
 * `--chunk-size=1` see the same objects as the whole LIST, and every page of
 * one LIST carries the same version, which names both clusters.
 */
async function pagedAcross(w: World, names: string[]): Promise<void> {
  const [pyPages, kChunked] = await Promise.all([
    runApp(w.app, "python pages", w.py("pages", NS, "2")),
    runApp(
      w.app,
      "kubectl --chunk-size=1",
      w.k("get", "configmaps", "-n", NS, "--chunk-size=1", "-o", "json"),
    ),
  ]);
  const pages: { rv: string; names: string[] }[] = pyPages.json[0].pages;
  assert.ok(pages.length >= 2, JSON.stringify(pages));
  assert.deepEqual(pages.flatMap((p) => p.names).sort(), names, "python pages");
  assert.deepEqual(
    [...new Set(pages.map((p) => p.rv))],
    [pages[0].rv],
    "every page has the first page's version",
  );
  const vector = decodeResourceVersion(pages[0].rv) ?? {};
  assert.deepEqual(Object.keys(vector).sort(), ["east", "local"]);
  const chunked = JSON.parse(kChunked.stdout);
  assert.deepEqual(
    chunked.items.map((i: Json) => i.metadata.name).sort(),
    names,
    "kubectl --chunk-size=1",
  );
}

/** 2: creates by round-robin (python), labels (client-node, kubectl apply), namespace (kubectl). */
async function routedCreates(w: World): Promise<void> {
  const from = w.mca.lines.length;
  const rr = await runApp(
    w.app,
    "python create",
    w.py("create", NS, "rr-1", "rr-2"),
  );
  const rrWhere: Record<string, string> = Object.fromEntries(
    rr.json.map((l: Json) => [l.name, l.cluster]),
  );
  assert.deepEqual(
    Object.values(rrWhere).sort(),
    ["east", "local"],
    `two creates on the round-robin set go to both clusters: ${rr.stdout}`,
  );
  const [labelled, inTeamEast, applied] = await Promise.all([
    runApp(
      w.app,
      "client-node create",
      w.js("create", NS, "lbl-east:placement=east,tier=x", "lbl-none:tier=x"),
    ),
    runApp(
      w.app,
      "kubectl create -n team-east",
      w.k(
        "create",
        "configmap",
        "ns-east",
        "-n",
        "team-east",
        "--from-literal=a=b",
      ),
    ),
    // kubectl apply: a GET by name (searched, 404 on both), then the create.
    // -v=6 logs each request and its answer on stderr: if a call hangs,
    // the error shows which one.
    runApp(w.app, "kubectl apply (labelled)", w.k("apply", "-f", "-", "-v=6"), {
      timeoutMs: 30_000,
      stdin: JSON.stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
          name: "apply-east",
          namespace: NS,
          labels: { placement: "east" },
        },
        data: { k: "v" },
      }),
    }),
  ]);
  assert.match(applied.stdout, /apply-east created/);
  assert.match(inTeamEast.stdout, /ns-east created/);
  const lblNone = labelled.json.find((l: Json) => l.name === "lbl-none");
  assert.ok(
    ["local", "east"].includes(lblNone?.cluster),
    `the unlabelled create is marked with its cluster: ${labelled.stdout}`,
  );

  const [onA, onB, teamEastOnB, teamEastOnA] = await Promise.all([
    namesOn(w.A, NS),
    namesOn(w.B, NS),
    namesOn(w.B, "team-east"),
    w.A.kubectl(["get", "namespace", "team-east"], { check: false }),
  ]);
  const landed = (name: string) =>
    [onA.includes(name) ? "local" : "", onB.includes(name) ? "east" : ""]
      .filter(Boolean).join("+");
  assert.equal(landed("rr-1"), rrWhere["rr-1"], "rr-1 is where it says");
  assert.equal(landed("rr-2"), rrWhere["rr-2"], "rr-2 is where it says");
  assert.equal(landed("lbl-east"), "east", "label placement=east: on B");
  assert.equal(landed("apply-east"), "east", "kubectl apply with it: on B");
  assert.equal(landed("lbl-none"), lblNone.cluster, "no label: the spread");
  assert.ok(teamEastOnB.includes("ns-east"), "namespace team-east: on B");
  assert.notEqual(teamEastOnA.code, 0, "team-east does not exist on A");

  const creates = callLines(w.mca.lines.slice(from)).filter((c) =>
    c.verb === "create"
  );
  assert.equal(creates.length, 6, JSON.stringify(creates));
  assert.deepEqual(
    creates.filter((c) => c.namespace === "team-east").map((c) => c.cluster),
    ["east"],
  );
  assert.deepEqual(
    creates.filter((c) => c.namespace === NS).map((c) => c.cluster).sort(),
    ["east", "east", "east", "local", lblNone.cluster].sort(),
    "logged: rr-1 and rr-2 one each, both labelled creates on east, " +
      "the unlabelled one on its turn",
  );
}

/** 3: python, client-node and `kubectl get -w` watch; A and B each get a new object. */
async function watchAcross(w: World): Promise<void> {
  const from = w.mca.lines.length;
  const watchers = [
    startApp(w.app, "python watch", w.py("watch", NS)),
    startApp(w.app, "client-node watch", w.js("watch", NS)),
  ];
  const kWatch = startApp(
    w.app,
    "kubectl -w",
    w.k("get", "configmaps", "-n", NS, "-w"),
  );
  const detail = () =>
    [...watchers, kWatch].map((p) => p.dump()).join("\n") + "\n" + mcaTail(w);
  try {
    await until(
      "the watchers to list and start watching",
      30_000,
      () =>
        watchers.every((p) => p.json().some((l) => l.ready)) &&
        kWatch.lines.some((l) => l.startsWith("only-b ")),
      detail,
    );
    // Each client watches from the (composite) version of its own LIST, so
    // objects created after that LIST cannot be missed, whenever the
    // upstream watches actually start.
    await Promise.all([
      w.A.kubectl(["create", "configmap", "w-a", "-n", NS]),
      w.B.kubectl(["create", "configmap", "w-b", "-n", NS]),
    ]);
    for (const p of watchers) {
      const seen = await until(
        `${p.name} to see ADDED w-a and w-b`,
        20_000,
        () => {
          const added = Object.fromEntries(
            p.json().filter((l) => l.type === "ADDED").map((l) => [
              l.name,
              l.cluster,
            ]),
          );
          return "w-a" in added && "w-b" in added && added;
        },
        detail,
      );
      assert.equal(seen["w-a"], "local", `${p.name}: w-a came from A`);
      assert.equal(seen["w-b"], "east", `${p.name}: w-b came from B`);
      assert.deepEqual(
        p.json().filter((l) => l.type === "ERROR" || l.ended),
        [],
        `${p.name}: no ERROR event, the watch did not end`,
      );
      assert.match(
        p.json().find((l) => l.name === "w-b").rv,
        /^mca\./,
        `${p.name}: events carry composite versions`,
      );
    }
    await until(
      "kubectl -w to print w-a and w-b",
      20_000,
      () =>
        kWatch.lines.some((l) => l.startsWith("w-a ")) &&
        kWatch.lines.some((l) => l.startsWith("w-b ")),
      detail,
    );
  } finally {
    await Promise.all([...watchers, kWatch].map((p) => p.kill()));
  }
  // A watch is logged when it ends: once its client has gone.
  const watches = await until(
    "mca to log the three watches",
    10_000,
    () => {
      const calls = callLines(w.mca.lines.slice(from)).filter((c) =>
        c.verb === "watch"
      );
      return calls.length >= 3 && calls;
    },
    () => mcaTail(w),
  );
  for (const c of watches) {
    assert.equal(c.cluster, "local+east", JSON.stringify(c));
  }
}

/**
 * 4: python GETs namespace ha (first-healthy east, local) at 20/s while B's
 * kube-apiserver stops and comes back.
 */
async function failover(w: World): Promise<void> {
  const load = startApp(
    w.app,
    "python load (ha)",
    w.py(
      "load",
      JSON.stringify({
        rate: 20,
        max: 2000,
        ops: [{ op: "get", ns: "ha", name: "ha-cfg" }],
      }),
    ),
    true,
  );
  const detail = () => `${load.dump()}\n${mcaTail(w)}`;
  try {
    await until(
      "5 answers from east for namespace ha",
      20_000,
      () =>
        loadResults(load).filter((r) => r.ok && r.detail === "east").length >=
          5,
      detail,
    );

    const stopAt = Date.now();
    progress("stopping B's kube-apiserver");
    await w.B.stopApiserver();
    progress(`B's kube-apiserver has exited (${Date.now() - stopAt} ms)`);
    const down = await until(
      "mca to mark east down",
      10_000,
      () =>
        mcaEvents(w).find((l) =>
          l.msg === "cluster health" && l.cluster === "east" &&
          l.healthy === false
        ),
      detail,
    );
    const flip = seconds(down.time);
    w.timings.failoverMs = Math.round(flip * 1000 - stopAt);
    progress(
      `east marked down ${w.timings.failoverMs} ms after the stop began (${down.reason})`,
    );
    await until(
      "5 answers from local after the flip",
      10_000,
      () =>
        loadResults(load).filter((r) =>
          r.t0 > flip && r.ok && r.detail === "local"
        ).length >= 5,
      detail,
    );

    // A merged LIST is complete or an error: a 503 naming east, never a
    // smaller 200 (an informer would delete east's objects from its cache).
    const [pyList, kList] = await Promise.all([
      runApp(w.app, "python list (east down)", w.py("list", NS)),
      runApp(
        w.app,
        "kubectl get (east down)",
        w.k("get", "configmaps", "-n", NS),
        { check: false },
      ),
    ]);
    const refused = pyList.json[0];
    assert.equal(refused.status, 503, JSON.stringify(refused));
    assert.equal(refused.retryAfter, "1");
    assert.match(String(refused.message), /mca: cluster east cannot answer/);
    assert.notEqual(kList.code, 0, "kubectl get fails rather than show a part");
    assert.match(kList.stderr, /cluster east cannot answer/);
    assert.doesNotMatch(kList.stdout, /^only-a /m);

    const restartAt = Date.now();
    progress("starting B's kube-apiserver again");
    await w.B.startApiserver();
    const readyAt = Date.now();
    progress(`B's kube-apiserver is ready (${readyAt - restartAt} ms)`);
    const up = await until(
      "mca to mark east up again",
      15_000,
      () =>
        mcaEvents(w).find((l) =>
          l.msg === "cluster health" && l.cluster === "east" &&
          l.healthy === true && seconds(l.time) > flip
        ),
      detail,
    );
    const back = seconds(up.time);
    // From the restart, and from the moment its /readyz (and RBAC) were ok.
    w.timings.recoveryMs = Math.round(back * 1000 - restartAt);
    w.timings.recoveryAfterReadyMs = Math.round(back * 1000 - readyAt);
    await until(
      "answers from east again",
      10_000,
      () =>
        loadResults(load).some((r) =>
          r.t0 > back && r.ok && r.detail === "east"
        ),
      detail,
    );
    await finishLoad(load, detail);

    const all = loadResults(load);
    const failed = all.filter((r) => !r.ok);
    progress(
      `failover load: ${all.length} calls, ${failed.length} failed ${
        JSON.stringify(failed)
      }`,
    );
    assert.ok(
      failed.length <= 1,
      `more than the one call in flight failed: ${JSON.stringify(failed)}`,
    );
    for (const f of failed) {
      assert.ok(
        f.t0 <= flip,
        `a call started after the flip failed: ${JSON.stringify(f)}`,
      );
    }
    const whileDown = all.filter((r) => r.t0 > flip && r.t1 < back);
    assert.ok(whileDown.length >= 5, `${whileDown.length} calls while down`);
    assert.deepEqual(
      [...new Set(whileDown.map((r) => r.detail))],
      ["local"],
      "every call while east was down was served by local",
    );
  } finally {
    await load.kill();
  }
}

/** What one informer program saw of one object: when it was added, deleted. */
interface Seen {
  add?: number;
  deletes: number;
}

/** The informer's lines, by object name (the `ev`/`name`/`t` lines of informer/main.go). */
function seenBy(proc: AppProcess): Map<string, Seen> {
  const seen = new Map<string, Seen>();
  for (const l of proc.json()) {
    if (typeof l.name !== "string") continue;
    const s = seen.get(l.name) ?? { deletes: 0 };
    if (l.ev === "add" && s.add === undefined) s.add = l.t;
    if (l.ev === "delete") s.deletes++;
    seen.set(l.name, s);
  }
  return seen;
}

/** Admin creates of configmaps on one cluster, each with the time it was answered. */
async function createOn(
  cluster: Cluster,
  names: string[],
  made: Map<string, number>,
): Promise<void> {
  for (const name of names) {
    await cluster.kubectl(["create", "configmap", name, "-n", NS]);
    made.set(name, Date.now());
  }
}

/**
 * 5: two client-go informers (the default LIST+WATCH one and a watch-list
 * one, `KUBE_FEATURE_WatchListClient=true`) on the spread namespace while
 * objects are created on both clusters and B's kube-apiserver is stopped
 * and started again: every object is seen (0 lost), the one real delete is
 * seen and no other (0 false DELETE), and B's objects made after its
 * return arrive within seconds.
 */
async function informersThroughOutage(w: World): Promise<void> {
  const informers = [
    startApp(
      w.app,
      "informer (list+watch)",
      w.informer(NS, "listwatch"),
      true,
    ),
    startApp(
      w.app,
      "informer (watch-list)",
      [
        "env",
        "KUBE_FEATURE_WatchListClient=true",
        ...w.informer(NS, "watchlist"),
      ],
      true,
    ),
  ];
  const detail = () =>
    informers.map((p) => p.dump()).join("\n") + "\n" + mcaTail(w);
  const made = new Map<string, number>();
  const batch = (tag: string, n: number) =>
    Array.from({ length: n }, (_, i) => `inf-${tag}-${i}`);
  try {
    await until(
      "both informers to sync",
      30_000,
      () => informers.every((p) => p.json().some((l) => l.ev === "synced")),
      detail,
    );
    // client-go's default: the merged LIST or watch-list it synced from came
    // in protobuf (the informer's `http` lines, one per exchange)
    for (const p of informers) {
      const reads = p.json().filter((l) =>
        l.http === "GET" && l.path === `/api/v1/namespaces/${NS}/configmaps` &&
        l.status === 200
      );
      assert.ok(reads.length > 0, `${p.name}: ${p.dump()}`);
      for (const l of reads) {
        assert.ok(
          l.got?.startsWith(PROTOBUF),
          `${p.name}: ${JSON.stringify(l)}`,
        );
      }
    }
    await Promise.all([
      createOn(w.A, batch("a1", 4), made),
      createOn(w.B, batch("b1", 4), made),
    ]);
    progress("informers: stopping B's kube-apiserver");
    const stoppedAt = Date.now();
    await w.B.stopApiserver();
    await createOn(w.A, batch("a2", 4), made);
    await w.A.kubectl(["delete", "configmap", "inf-a1-0", "-n", NS]);
    await until(
      "mca to mark east down",
      10_000,
      () =>
        mcaEvents(w).some((l) =>
          l.msg === "cluster health" && l.cluster === "east" &&
          l.healthy === false && seconds(l.time) * 1000 >= stoppedAt
        ),
      detail,
    );
    progress("informers: starting B's kube-apiserver again");
    await w.B.startApiserver();
    const backAt = Date.now();
    await Promise.all([
      createOn(w.A, batch("a3", 4), made),
      createOn(w.B, batch("b3", 4), made),
    ]);
    for (const p of informers) {
      await until(
        `${p.name} to see every object made and the one delete`,
        60_000,
        () => {
          const seen = seenBy(p);
          return [...made.keys()].every((n) => seen.get(n)?.add) &&
            (seen.get("inf-a1-0")?.deletes ?? 0) >= 1;
        },
        () => {
          const seen = seenBy(p);
          const lost = [...made.keys()].filter((n) => !seen.get(n)?.add);
          return `not seen: ${lost.join(", ")}\n${detail()}`;
        },
      );
      const seen = seenBy(p);
      const falseDeletes = [...seen.entries()].filter(([name, s]) =>
        s.deletes > 0 && name !== "inf-a1-0"
      );
      const late = [...made.entries()].map(([n, t]) => seen.get(n)!.add! - t);
      const afterReturn = batch("b3", 4).map((n) => seen.get(n)!.add! - backAt);
      const key = p.name.includes("watch-list") ? "watchList" : "listWatch";
      w.timings[`${key}MaxLagMs`] = Math.max(...late);
      w.timings[`${key}BAfterReturnMs`] = Math.max(...afterReturn);
      progress(
        `${p.name}: ${made.size} made, 0 lost, ${falseDeletes.length} false deletes, ` +
          `max lag ${Math.max(...late)} ms, B's last object ${
            Math.max(...afterReturn)
          } ms after B was ready again`,
      );
      assert.deepEqual(falseDeletes, [], `${p.name}: no false DELETE`);
      assert.ok(
        Math.max(...late) < 10_000,
        `${p.name}: every object within 10 s of being made (lags ${late})`,
      );
      assert.equal(seen.get("inf-a1-0")!.deletes, 1, "the real delete, once");
    }
    // The restarted kube-apiserver cannot be watched from a version of
    // before its restart (its watch cache starts afresh: "too old resource
    // version", as against one server), so each informer relists once and
    // watches on; it must not loop. A 503 while B is not yet marked up
    // again is retried by client-go.
    for (const name of ["listwatch", "watchlist"]) {
      const mine = callLines(w.mca.lines).filter((c) =>
        c.userAgent === `mca-e2e-informer/${name}`
      );
      const lists = mine.filter((c) => c.verb === "list" && c.status === 200);
      const watches = mine.filter((c) => c.verb === "watch");
      w.timings[`${name}Lists`] = lists.length;
      w.timings[`${name}EndedWatches`] = watches.length;
      assert.ok(lists.length <= 2, `${name} LISTs: ${JSON.stringify(lists)}`);
      assert.ok(
        watches.length <= 2,
        `${name} watches: ${JSON.stringify(watches)}`,
      );
    }
  } finally {
    await Promise.all(informers.map((p) => p.kill()));
  }
}

/** The objects an informer holds now, name → cluster, from its add/update/delete lines. */
function cacheOf(proc: AppProcess): Map<string, string> {
  const cache = new Map<string, string>();
  for (const l of proc.json()) {
    if (typeof l.name !== "string") continue;
    if (l.ev === "delete") cache.delete(l.name);
    else if (l.ev === "add" || l.ev === "update") cache.set(l.name, l.cluster);
  }
  return cache;
}

/** A Role and RoleBinding giving the app `update` on pods in `ns` (on one cluster only). */
function podUpdater(ns: string): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "List",
    items: [{
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "pod-updater", namespace: ns },
      rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["update"] }],
    }, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "pod-updater", namespace: ns },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "Role",
        name: "pod-updater",
      },
      subjects: [{ kind: "ServiceAccount", name: "app", namespace: NS }],
    }],
  });
}

/**
 * 7 (#12 items 5, 8, 9), kubectl through mca on the spread namespace: a
 * server-side apply of an object that lives only in B changes it there and
 * makes no copy in A; an apply of a new object creates it in one cluster;
 * a GET of a name both clusters hold (kube-root-ca.crt) warns, a patch of
 * it is refused (409), and `-l mca.io/cluster=east` lists B's alone;
 * `kubectl get NAME -w` watches on from the object's version (no 410);
 * `kubectl auth can-i` is answered by the clusters the call would reach.
 */
async function writesByName(w: World): Promise<void> {
  await w.B.kubectl(["create", "configmap", "ssa-b", "-n", NS]);
  const apply = (name: string) =>
    runApp(w.app, `kubectl apply --server-side ${name}`, [
      ...w.k("apply", "--server-side", "--field-manager=e2e", "-f", "-"),
    ], {
      stdin: JSON.stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name, namespace: NS },
        data: { applied: "yes" },
      }),
    });
  await apply("ssa-b");
  assert.ok(
    !(await namesOn(w.A, NS)).includes("ssa-b"),
    "the apply of B's object made no copy in A",
  );
  const onB = JSON.parse(
    (await w.B.kubectl(["get", "configmap", "ssa-b", "-n", NS, "-o", "json"]))
      .stdout,
  );
  assert.equal(onB.data?.applied, "yes", "B's object was applied");
  await apply("ssa-new");
  const holders = [
    (await namesOn(w.A, NS)).includes("ssa-new"),
    (await namesOn(w.B, NS)).includes("ssa-new"),
  ].filter(Boolean).length;
  assert.equal(holders, 1, "a new object applied lands in one cluster");

  const shared = await runApp(
    w.app,
    "kubectl get kube-root-ca.crt",
    w.k("get", "configmap", "kube-root-ca.crt", "-n", NS, "-o", "name"),
  );
  assert.match(
    shared.stderr,
    /Warning: mca: configmaps mca-e2e\/kube-root-ca.crt exists in clusters local, east/,
  );
  const patch = await runApp(
    w.app,
    "kubectl label kube-root-ca.crt",
    w.k("label", "configmap", "kube-root-ca.crt", "-n", NS, "e2e=1"),
    { check: false },
  );
  assert.notEqual(patch.code, 0, patch.stdout);
  assert.match(patch.stderr, /exists in clusters local, east/);
  const eastOnly = await runApp(
    w.app,
    "kubectl get -l mca.io/cluster=east",
    w.k(
      "get",
      "configmaps",
      "-n",
      NS,
      "-l",
      "mca.io/cluster=east",
      "-o",
      "json",
    ),
  );
  const items = JSON.parse(eastOnly.stdout).items as Json[];
  assert.deepEqual(
    [
      ...new Set(
        items.map((i) => i.metadata.annotations?.[CLUSTER_ANNOTATION]),
      ),
    ],
    ["east"],
  );
  assert.ok(items.some((i) => i.metadata.name === "only-b"));
  assert.doesNotMatch(eastOnly.stderr, /Warning/);

  await watchOneObject(w);
  await sharedNamesSeen(w);
  await accessReviews(w);
}

/**
 * 7: a shared name is not silent for an informer (client-go logs the LIST's
 * Warning), and the way out, `-l mca.io/cluster=east`, lists and watches B
 * alone (`kubectl get -w`: the watch resumes from the narrowed list's
 * version and sees B's next object).
 */
async function sharedNamesSeen(w: World): Promise<void> {
  const informer = startApp(
    w.app,
    "informer (shared names)",
    w.informer(NS, "shared"),
    true,
  );
  const watch = startApp(
    w.app,
    "kubectl get -l mca.io/cluster=east -w",
    w.k("get", "configmaps", "-n", NS, "-l", "mca.io/cluster=east", "-w"),
  );
  const detail = () => `${informer.dump()}\n${watch.dump()}`;
  try {
    await until(
      "the informer to log mca's Warning about kube-root-ca.crt",
      30_000,
      () =>
        informer.stderr.some((l) =>
          l.includes("mca-e2e/kube-root-ca.crt exist in more than one cluster")
        ),
      detail,
    );
    await until(
      "kubectl -w to list B's objects",
      20_000,
      () => watch.lines.some((l) => l.startsWith("only-b ")),
      detail,
    );
    await w.B.kubectl(["create", "configmap", "sel-b", "-n", NS]);
    await w.A.kubectl(["create", "configmap", "sel-a", "-n", NS]);
    await until(
      "kubectl -w to see B's new object",
      20_000,
      () => watch.lines.some((l) => l.startsWith("sel-b ")),
      detail,
    );
    assert.ok(!watch.lines.some((l) => /^(only-a|sel-a) /.test(l)), detail());
    assert.doesNotMatch(watch.stderr.join("\n"), /Warning|error/i);
  } finally {
    await Promise.all([informer.kill(), watch.kill()]);
  }
}

/** 7: `kubectl get only-b -w` (a watch from the GET's `{east: N}`) sees B's change. */
async function watchOneObject(w: World): Promise<void> {
  const watch = startApp(
    w.app,
    "kubectl get only-b -w",
    w.k(
      "get",
      "configmap",
      "only-b",
      "-n",
      NS,
      "-w",
      "--no-headers",
      "-o",
      "custom-columns=N:.metadata.name,T:.metadata.labels.touched",
    ),
  );
  try {
    await until(
      "kubectl to print only-b",
      20_000,
      () => watch.lines.some((l) => l.startsWith("only-b")),
      () => watch.dump(),
    );
    // a change made before the watch opens is after the GET's version: replayed
    await w.B.kubectl(["label", "configmap", "only-b", "-n", NS, "touched=1"]);
    await until(
      "kubectl -w to print B's change",
      20_000,
      () => watch.lines.some((l) => /^only-b\s+1$/.test(l.trim())),
      () => watch.dump(),
    );
    assert.doesNotMatch(watch.stderr.join("\n"), /Expired|410|error/i);
  } finally {
    await watch.kill();
  }
}

/** 7: `kubectl auth can-i` asks the clusters of the call, all of them on a set. */
async function accessReviews(w: World): Promise<void> {
  // team-east exists only in B (rule team-east → east); before, A answered "no"
  const eastNs = await runApp(
    w.app,
    "can-i create configmaps -n team-east",
    w.k("auth", "can-i", "create", "configmaps", "-n", "team-east"),
    { check: false },
  );
  assert.equal(eastNs.stdout.trim(), "yes", eastNs.stderr);
  // A alone lets the app update pods in the spread namespace: not every cluster
  await w.A.kubectl(["apply", "-f", "-"], { stdin: podUpdater(NS) });
  const spread = await runApp(
    w.app,
    "can-i update pods (spread)",
    w.k("auth", "can-i", "update", "pods", "-n", NS),
    { check: false },
  );
  // kubectl prints the reason after "no - "
  assert.match(
    spread.stdout.trim(),
    /^no - mca: .*cluster east/,
    spread.stderr,
  );
  const both = await runApp(
    w.app,
    "can-i list configmaps (spread)",
    w.k("auth", "can-i", "list", "configmaps", "-n", NS),
    { check: false },
  );
  assert.equal(both.stdout.trim(), "yes", both.stderr);
}

/**
 * 8 (#12 item 7): a client-go informer on the first-healthy namespace `ha`
 * (east, then local) while B's kube-apiserver stops: before, its cache holds
 * B's objects; after the switch its re-watch from B's version is refused
 * (410), it relists from A, and its cache is exactly A's objects, every one
 * marked local (before the fix, A replayed its own history from B's number
 * and the cache was the union of both).
 */
async function informerThroughFailover(w: World): Promise<void> {
  await Promise.all([
    w.A.kubectl(["create", "configmap", "ha-a-1", "-n", "ha"]),
    w.B.kubectl(["create", "configmap", "ha-b-1", "-n", "ha"]),
  ]);
  const informer = startApp(
    w.app,
    "informer (ha)",
    w.informer("ha", "failover"),
    true,
  );
  const detail = () => `${informer.dump()}\n${mcaTail(w)}`;
  const exactly = async (cluster: Cluster, name: string) => {
    const want = (await namesOn(cluster, "ha")).sort();
    const cache = cacheOf(informer);
    return JSON.stringify([...cache.keys()].sort()) === JSON.stringify(want) &&
      [...cache.values()].every((c) => c === name);
  };
  try {
    await until(
      "the informer to hold B's objects",
      30_000,
      () => exactly(w.B, "east"),
      detail,
    );
    progress("failover informer: stopping B's kube-apiserver");
    await w.B.stopApiserver();
    await w.A.kubectl(["create", "configmap", "ha-a-2", "-n", "ha"]);
    await until(
      "the informer to hold exactly A's objects",
      60_000,
      () => exactly(w.A, "local"),
      () => `cache: ${JSON.stringify([...cacheOf(informer)])}\n${detail()}`,
    );
    const cache = cacheOf(informer);
    assert.ok(!cache.has("ha-b-1"), "B's object left the cache");
    const watches = callLines(w.mca.lines).filter((c) =>
      c.userAgent === "mca-e2e-informer/failover" && c.verb === "watch"
    );
    w.timings.failoverInformerWatches = watches.length;
    progress(
      `failover informer: cache = A's ${cache.size} objects; ${watches.length} watches`,
    );
  } finally {
    await informer.kill();
    await w.B.startApiserver();
  }
}

/** One change of the mounted configuration in step 6. */
interface Change {
  name: string;
  /** Writes the change the kubelet way (an atomic `..data` swap). */
  write(w: World): Promise<void>;
  /** A valid version: its rule count and where probe-ns goes under it. */
  loaded?: { rules: number; probe: "local" | "east" };
  /** An invalid one: its error line. */
  rejected?: RegExp;
}

function routingChange(
  name: string,
  text: string,
  expect: Pick<Change, "loaded" | "rejected">,
): Change {
  return {
    name,
    write: (w) => writeProjectedVolume(w.routingDir, { "routing.yaml": text }),
    ...expect,
  };
}

/** `ROUTING_V1` with `from` replaced by `to`, and the line `to` is on. */
function brokenV1(from: string, to: string): [string, number] {
  const text = ROUTING_V1.replace("version 1", "an invalid version")
    .replace(from, to);
  return [text, text.split("\n").findIndex((l) => l.includes(to)) + 1];
}

function reloadChanges(kubeconfig: string): Change[] {
  const v1 = { loaded: { rules: 5, probe: "local" as const } };
  const v2 = { loaded: { rules: 6, probe: "east" as const } };
  const file = ROUTING_FILE.replaceAll(".", "\\.");
  const [badSelector, selectorLine] = brokenV1(
    '"placement=east"',
    '"placement in (east"',
  );
  const [badGlob, globLine] = brokenV1("[team-east]", '["team-[a]"]');
  // The kubeconfig Secret broken: context east names a cluster it lacks.
  const broken = JSON.parse(kubeconfig);
  broken.contexts[0].context.cluster = "nowhere";
  const clusters = (text: string) => (w: World) =>
    writeProjectedVolume(w.clustersDir, { "east.kubeconfig": text });
  return [
    routingChange("v2", ROUTING_V2, v2),
    routingChange("v1", ROUTING_V1, v1),
    routingChange("v2", ROUTING_V2, v2),
    routingChange("unknown cluster", ROUTING_BAD, {
      rejected: new RegExp(
        `^${file}:${BAD_LINE}: unknown cluster "north" in rule probe \\(known: east, local\\)$`,
      ),
    }),
    routingChange("v1", ROUTING_V1, v1),
    routingChange("bad selector", badSelector, {
      rejected: new RegExp(
        `^${file}:${selectorLine}: rule by-label: bad label selector`,
      ),
    }),
    routingChange("bad glob", badGlob, {
      rejected: new RegExp(
        `^${file}:${globLine}: rule team-east: bad namespace glob "team-\\[a\\]"`,
      ),
    }),
    routingChange("v2", ROUTING_V2, v2),
    {
      name: "broken kubeconfig",
      write: clusters(JSON.stringify(broken)),
      rejected: new RegExp(`${CLUSTERS_MOUNT}/east\\.kubeconfig`),
    },
    { name: "kubeconfig repaired", write: clusters(kubeconfig), ...v2 },
  ];
}

/**
 * 6: python at 20 calls/s (by-name search, merged LIST, probe-ns, ha) while
 * the routing file flips between two valid versions and is replaced by
 * invalid ones (unknown cluster, bad selector, bad glob), and the clusters
 * Secret is broken and repaired. Each valid version must take effect (where
 * probe-ns goes tells v1 from v2); each invalid one must be rejected with
 * its file and line while the one in force keeps serving; no call fails.
 */
async function reloadUnderLoad(w: World): Promise<void> {
  const load = startApp(
    w.app,
    "python load (reload)",
    w.py(
      "load",
      JSON.stringify({
        rate: 20,
        max: 4000,
        ops: [
          { op: "get", ns: NS, name: "only-a" },
          { op: "list", ns: NS },
          { op: "get", ns: "probe-ns", name: "where" },
          { op: "get", ns: "ha", name: "ha-cfg" },
          { op: "get", ns: NS, name: "only-b" },
        ],
      }),
    ),
    true,
  );
  const detail = () => `${load.dump()}\n${mcaTail(w)}`;
  const probeSince = (t: number) =>
    loadResults(load).filter((r) => r.ns === "probe-ns" && r.ok && r.t0 > t);
  const changes = reloadChanges(w.eastKubeconfig);
  try {
    await until(
      "the load to run",
      20_000,
      () => loadResults(load).length >= 10,
      detail,
    );
    let inForce = "local"; // v1: probe-ns goes to local (default)
    for (const change of changes) {
      const seen = w.mca.lines.length;
      const at = Date.now() / 1000;
      const logged = () =>
        parseJsonLines(w.mca.lines.slice(seen)).find((l) =>
          l.msg === "routing configuration loaded" || l.msg === REJECTED
        );
      await change.write(w);
      const line = await until(
        `mca to load or reject "${change.name}"`,
        10_000,
        logged,
        detail,
      );
      const when = seconds(line.time);
      if (change.rejected) {
        assert.equal(line.msg, REJECTED, `"${change.name}" must be rejected`);
        assert.equal(line.level, "error");
        assert.match(line.error, change.rejected);
        progress(`"${change.name}" rejected: ${line.error}`);
        // The version in force stays: probe-ns keeps going where it went.
        await until(
          `3 probe-ns calls after "${change.name}" was rejected`,
          10_000,
          () => probeSince(when).length >= 3,
          detail,
        );
        assert.deepEqual(
          [...new Set(probeSince(at).map((r) => r.detail))],
          [inForce],
          "the last good version stays in force",
        );
      } else {
        assert.equal(line.msg, "routing configuration loaded", change.name);
        assert.equal(line.rules, change.loaded!.rules);
        assert.deepEqual(line.clusters, ["east", "local"]);
        inForce = change.loaded!.probe;
        await until(
          `probe-ns answered by ${inForce} under "${change.name}"`,
          10_000,
          () => probeSince(when).some((r) => r.detail === inForce),
          detail,
        );
        progress(
          `"${change.name}" in force ${
            Date.now() - at * 1000
          } ms after the swap`,
        );
      }
    }
    await finishLoad(load, detail);

    const all = loadResults(load);
    const failed = all.filter((r) => !r.ok);
    const secs = all.at(-1).t1 - all[0].t0;
    w.timings.reloadCalls = all.length;
    w.timings.reloadCallsPerSecond = Math.round(all.length / secs);
    progress(
      `reload load: ${all.length} calls in ${
        secs.toFixed(1)
      } s, ${failed.length} failed`,
    );
    assert.deepEqual(failed, [], "no call failed during the reloads");
    for (const r of all) {
      if (r.op === "list") {
        // no cluster left out (the Warning names only the shared kube-root-ca.crt)
        assert.doesNotMatch(
          String(r.detail.warning),
          /unavailable/,
          JSON.stringify(r),
        );
        assert.ok(
          r.detail.items.includes("only-a@local") &&
            r.detail.items.includes("only-b@east"),
          JSON.stringify(r),
        );
      } else if (r.ns === NS) {
        const want = r.name === "only-a" ? "local" : "east";
        assert.equal(r.detail, want, JSON.stringify(r));
      } else if (r.ns === "ha") {
        assert.equal(r.detail, "east", JSON.stringify(r));
      }
    }
    const reloads = mcaEvents(w).filter((l) =>
      l.msg === "routing configuration loaded" || l.msg === REJECTED
    ).map((l) => l.rules ?? "rejected");
    assert.deepEqual(
      reloads,
      changes.map((c) => c.loaded?.rules ?? "rejected"),
      "one log line per change, in order",
    );
  } finally {
    await load.kill();
  }
}

/** 7: the whole log, once mca has stopped. */
async function logChecks(w: World): Promise<void> {
  await stopMca(w.mca);
  const calls = callLines(w.mca.lines);
  assert.ok(calls.length > 100, `${calls.length} calls logged`);
  const unnamed = calls.filter((c) =>
    !/^(local|east)(\+(local|east))?$/.test(c.cluster ?? "")
  );
  assert.deepEqual(unnamed, [], "call lines without a cluster");
  const byCluster: Record<string, number> = {};
  for (const c of calls) {
    byCluster[c.cluster!] = (byCluster[c.cluster!] ?? 0) + 1;
  }
  progress(`calls logged by cluster: ${JSON.stringify(byCluster)}`);
  for (const name of ["local", "east", "local+east"]) {
    assert.ok(byCluster[name] > 0, `no call logged for ${name}`);
  }
  for (const [who, token] of Object.entries(w.tokens)) {
    const leaks = [...w.mca.lines, ...w.mca.stderr].filter((l) =>
      l.includes(token)
    );
    assert.equal(leaks.length, 0, `an mca log line holds ${who}'s token`);
  }
  const notJson = w.mca.lines.filter((l) => {
    try {
      JSON.parse(l);
      return false;
    } catch {
      return true;
    }
  });
  assert.deepEqual(notJson, [], "mca's stdout has non-JSON lines");
}

/**
 * 7: client-go's typed clients with their default protobuf bodies
 * (tests/e2e/informer/protobuf.go): create, get, update on the spread set
 * (an update carries the composite version and the cluster mark back),
 * create, get, update and server-side apply in a namespace mapped to
 * another on east, a merged list and a watch from its version, deletes; a
 * create routed by the labels of its protobuf body (rule by-label).
 */
async function protobufBodies(w: World): Promise<void> {
  const from = w.mca.lines.length;
  const run = await runApp(
    w.app,
    "client-go protobuf",
    w.informer("protobuf", NS, PB_APP, "probe-ns"),
    { check: false, timeoutMs: 150_000 },
  );
  const detail = () => `${run.stdout}\n${run.stderr}\n${mcaTail(w)}`;
  const checks = run.json.filter((l) => l.check !== undefined);
  assert.deepEqual(checks.filter((c) => !c.ok), [], detail());
  assert.equal(checks.length, 25, `every check ran\n${detail()}`);
  assert.equal(run.code, 0, detail());
  const http = run.json.filter((l) => l.http !== undefined);
  const writes = http.filter((l) => l.http === "POST" || l.http === "PUT");
  assert.ok(writes.length >= 14, detail());
  for (const l of writes) {
    assert.ok(
      l.sent.startsWith(PROTOBUF),
      `sent protobuf: ${JSON.stringify(l)}`,
    );
  }
  // Answers come back in the protobuf client-go asked for first: every call
  // in the mapped namespace, creates and updates on the spread set, the
  // merged LIST and the merged WATCH. By-name reads and deletes on the spread
  // set (a search) answer JSON, which client-go decodes by Content-Type.
  const spreadList = `/api/v1/namespaces/${NS}/configmaps`;
  const protobufAnswers = http.filter((l) =>
    l.path.includes(`/namespaces/${PB_APP}/`) ||
    l.path.startsWith(spreadList) && ["POST", "PUT"].includes(l.http) ||
    l.http === "GET" && l.path === spreadList
  );
  assert.equal(protobufAnswers.length, 20, detail());
  for (const l of protobufAnswers) {
    assert.ok(
      l.got.startsWith(PROTOBUF),
      `answered protobuf: ${JSON.stringify(l)}`,
    );
  }
  const mineNow = () =>
    callLines(w.mca.lines.slice(from)).filter((c) =>
      c.userAgent === "mca-e2e-protobuf"
    );
  // a call is logged once its answer has been sent: the last may come later
  await until(
    "mca to log the calls in the mapped namespace",
    5_000,
    () => mineNow().filter((c) => c.namespace === PB_APP).length === 6,
    () => JSON.stringify(mineNow()),
  );
  const mine = mineNow();
  const mapped = mine.filter((c) => c.namespace === PB_APP);
  assert.ok(mapped.every((c) => c.cluster === "east"), JSON.stringify(mapped));
  assert.deepEqual(
    mine.filter((c) => (c.status ?? 0) >= 400),
    [],
    JSON.stringify(mine),
  );
  assert.deepEqual(
    (await namesOn(w.B, PB_REMOTE)).filter((n) => n.startsWith("pb-")),
    [],
    "made on east, deleted through mca",
  );
  // the labels of a protobuf body route it (placement=east → east)
  const labeled = mine.filter((c) =>
    c.method === "POST" && c.namespace === "probe-ns"
  );
  assert.deepEqual(labeled.map((c) => c.cluster), ["east"]);
  assert.ok((await namesOn(w.B, "probe-ns")).includes("pb-labeled"));
  await w.B.kubectl(["delete", "configmap", "pb-labeled", "-n", "probe-ns"]);
}

// ---------------------------------------------------------------------------

Deno.test({
  name: "multi-cluster: two real clusters through mca " +
    "(list, create, watch, failover, reload)",
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  await ensureToolchain();
  const [kubectlSdk, pythonSdk, nodeSdk, informerProg] = await Promise.all([
    ...["kubectl", "python", "client-node"].map((n) => buildSdk(n)),
    buildSdk("informer", {
      dir: fileURLToPath(new URL("./informer/", import.meta.url)),
    }),
  ]);
  const dir = join(TMP_E2E, `multicluster-${crypto.randomUUID().slice(0, 8)}`);
  const dirs = {
    sa: join(dir, "sa"),
    mcaSa: join(dir, "mca-sa"),
    state: join(dir, "mca-state"),
    mcaHome: join(dir, "home-mca"),
    appHome: join(dir, "home-app"),
    clusters: join(dir, "clusters"),
    routing: join(dir, "routing"),
  };
  for (const d of Object.values(dirs)) await Deno.mkdir(d, { recursive: true });

  progress(`starting clusters A (local) and B (east) in ${dir}`);
  const starts = await Promise.allSettled([
    startCluster({ dir: join(dir, "cluster-a") }),
    startCluster({ dir: join(dir, "cluster-b") }),
  ]);
  const up = starts.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
  if (up.length < 2) {
    await Promise.all(up.map((c) => c.stop()));
    throw starts.flatMap((r) => r.status === "rejected" ? [r.reason] : [])[0];
  }
  const [A, B] = up;
  progress(`clusters up: A ${A.url}, B ${B.url}`);

  let mca: McaProcess | undefined;
  let net: PodNetwork | undefined;
  let passed = false;
  const timings: Record<string, number> = {};
  try {
    const [tokenA, tokenB] = await Promise.all([
      A.writeServiceAccountDir(dirs.sa),
      B.mintToken({ duration: "1h" }),
      prepareCluster(A, "local", ["ha", "probe-ns"]),
      prepareCluster(B, "east", ["ha", "probe-ns", "team-east", PB_REMOTE]),
    ]);
    const eastKubeconfig = kubeconfigFor(
      "east",
      B,
      await Deno.readTextFile(B.caFile),
      tokenB,
    );
    await writeProjectedVolume(dirs.clusters, {
      "east.kubeconfig": eastKubeconfig,
    });
    await writeProjectedVolume(dirs.routing, { "routing.yaml": ROUTING_V1 });

    // mca in its Pod: its own loopback, both API servers reachable.
    net = await startPodNetwork({
      dir: join(dir, "net"),
      forward: [
        { host: A.host, port: A.port },
        { host: B.host, port: B.port },
      ],
    });
    const pod = phase2Pod();
    const mcaVolumes = {
      "kube-api-access-sa": dirs.sa,
      "kube-api-access-mca-sa": dirs.mcaSa,
      "mca-state": dirs.state,
      "mca-clusters": dirs.clusters,
      "mca-routing": dirs.routing,
    };
    progress("starting mca in its simulated container");
    const t0 = performance.now();
    mca = startMca(
      pod,
      mcaContainer(
        A,
        mcaVolumes,
        dirs.mcaHome,
        net.nsPath,
        mcaProxyArgs([
          "--clusters-dir",
          CLUSTERS_MOUNT,
          "--routing-config",
          ROUTING_FILE,
          "--health-interval-ms",
          String(HEALTH_INTERVAL_MS),
        ]),
      ),
      join(dir, "mca.log"),
    );
    const probe = mcaContainer(A, mcaVolumes, dirs.mcaHome, net.nsPath, [
      "--probe",
      "--timeout-ms",
      "2000",
    ]);
    await waitReady(mca, () => spawnInPod(pod, "mca", probe).output());
    timings.mcaReadyMs = Math.round(performance.now() - t0);
    const ready = parseJsonLines(mca.lines).find((l) => l.msg === "ready");
    assert.deepEqual(ready?.clusters, ["east", "local"], "mca's clusters");
    assert.equal(ready?.rules, 5, "mca's rules");
    progress(`mca is ready (${timings.mcaReadyMs} ms)`);

    const w: World = {
      A,
      B,
      mca,
      app: {
        pod,
        volumes: { "kube-api-access-mca-sa": dirs.mcaSa },
        serviceEnv: A.serviceEnv(),
        home: dirs.appHome,
        netns: net.nsPath,
        imageEnv: {
          MCA_CLIENT_NODE_APP: dirname(nodeSdk.command[1]),
          NO_COLOR: "1",
        },
      },
      routingDir: dirs.routing,
      clustersDir: dirs.clusters,
      eastKubeconfig,
      tokens: { A: tokenA, B: tokenB },
      timings,
      py: (...args) => [pythonSdk.command[0], join(SCRIPTS, "mc.py"), ...args],
      js: (...args) => [nodeSdk.command[0], join(SCRIPTS, "mc.mjs"), ...args],
      k: (...args) => [kubectlSdk.command[2], ...args],
      informer: (...args) => [...informerProg.command, ...args],
    };

    const steps: [string, (w: World) => Promise<void>][] = [
      ["1 merged LIST across both clusters", listAcross],
      ["2 creates routed by round-robin, namespace and labels", routedCreates],
      ["3 merged WATCH sees events of both clusters", watchAcross],
      [
        "4 failover when B's apiserver stops, recovery when it returns",
        failover,
      ],
      [
        "5 client-go informers through B's outage: 0 lost, 0 false deletes",
        informersThroughOutage,
      ],
      [
        "6 reloads under load, invalid versions rejected",
        reloadUnderLoad,
      ],
      ["7 client-go's default protobuf bodies", protobufBodies],
      [
        "8 by-name writes, watch by name, access reviews, shared names",
        writesByName,
      ],
      [
        "9 first-healthy failover: the informer holds one cluster's objects",
        informerThroughFailover,
      ],
      ["10 every call line names its cluster, no token logged", logChecks],
    ];
    // MCA_E2E_STEPS=7 (or 1,7) runs only those steps, to work on one; unset: all.
    const only = Deno.env.get("MCA_E2E_STEPS")?.split(",");
    for (const [name, fn] of steps) {
      if (only && !only.includes(name[0])) continue;
      progress(`step ${name}`);
      const s0 = performance.now();
      const ok = await t.step(name, () => fn(w));
      timings[`step${name[0]}Ms`] = Math.round(performance.now() - s0);
      progress(
        `step ${name}: ${ok ? "ok" : "FAILED"} (${
          timings[`step${name[0]}Ms`]
        } ms)`,
      );
      if (!ok) {
        throw new Error(`step "${name}" failed; the later ones were not run`);
      }
    }
    passed = true;
  } finally {
    await Promise.all([...running].map((p) => p.kill()));
    if (mca) await stopMca(mca);
    await net?.close();
    await Promise.all([A.stop(), B.stop()]);
    timings.totalMs = Math.round(performance.now() - started);
    progress(`timings: ${JSON.stringify(timings)}`);
    progress(passed ? "passed" : `FAILED; logs kept in ${dir}`);
  }
  // A green run leaves nothing behind; a red one keeps its logs.
  if (passed) await Deno.remove(dir, { recursive: true });
});
