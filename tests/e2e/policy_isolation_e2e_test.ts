/**
 * The call policy's `isolation: namespace` on two real control planes
 * (A = `local`, the Pod's own cluster, namespace `app-ns`; B = `east`, where
 * a routing rule maps `app-ns` to `remote-ns`), through `mca` running
 * in-process with A's real service-account directory, B behind a
 * kubeconfig, and the audit log at Metadata level.
 *
 * RBAC on both clusters lets the ServiceAccount read configmaps and pods
 * in every namespace (a ClusterRole) and its own namespace's secrets, so
 * every refusal seen here is MCA's. kubectl and the Python client (the SDK matrix's
 * venv), each with a kubeconfig that points at `mca`, must see:
 * - the Pod's own namespace readable on both clusters (pods in `app-ns` on
 *   A, configmaps of `app-ns` = `remote-ns` on B);
 * - other namespaces (`other`, `remote-ns` named directly, cluster scope)
 *   refused with the SDK's usual forbidden error;
 * - the grant rule opening exactly what it names (configmaps of `shared` on
 *   `local`): pods of `shared` refused, a by-name read of B's object not
 *   found, and the fan-out LIST of `shared` answered by A alone with a
 *   `Warning` naming east;
 * - audit events naming the cluster(s), the routing rule and the policy rule.
 */

import { parseExposition, sumSamples } from "../support/prom_parse.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Sidecar, startSidecar } from "../../lib/sidecar/run.ts";
import {
  type Cluster,
  DEFAULT_ROLE_RULES,
  startCluster,
  writeProjectedVolume,
} from "../support/cluster.ts";
import { buildSdk } from "../support/mca_pod.ts";
import { inProcessOptions } from "../support/in_process.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SCRIPT = fileURLToPath(new URL("./policy/iso.py", import.meta.url));
const OWN = "app-ns";
const MAPPED = "remote-ns";
const REFUSAL = "refused by the MCA call policy of this Pod";

const ROUTING = `default: local
rules:
  - name: own-on-east
    match: {namespaces: [${OWN}], resources: [configmaps]}
    cluster: east
    namespace: ${MAPPED}
  - name: shared-both
    match: {namespaces: [shared]}
    clusters: [local, east]
    strategy: round-robin
`;

const POLICY = `apiVersion: mca.io/v1alpha1
kind: Policy
mode: enforce
default: allow
isolation: namespace
rules:
  - name: no-secrets
    effect: deny
    verbs: ["*"]
    apiGroups: [""]
    resources: [secrets]
  - name: read-shared-local
    effect: allow
    verbs: [get, list, watch]
    resources: [configmaps]
    namespaces: [shared]
    clusters: [local]
`;

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
`;

// deno-lint-ignore no-explicit-any
type Json = any;

/** A kubeconfig; `name` is also the cluster's name in mca's registry. */
function kubeconfig(
  name: string,
  server: string,
  auth: { caPem: string; token: string },
): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name,
      cluster: { server, "certificate-authority-data": btoa(auth.caPem) },
    }],
    users: [{ name, user: { token: auth.token } }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    "current-context": name,
  });
}

/** Namespaces, objects and RBAC of one cluster; `own` is the Pod's namespace there. */
async function seed(cluster: Cluster, tag: string): Promise<void> {
  const own = cluster.namespace;
  const k = (args: string[]) => cluster.kubectl(args);
  await k(["create", "namespace", "shared"]);
  await k(["create", "namespace", "other"]);
  for (const ns of [own, "shared", "other"]) {
    const name = ns === own ? `own-${tag}` : `${ns}-${tag}`;
    await k(["create", "configmap", name, "-n", ns, "--from-literal=a=b"]);
  }
  await k([
    "create",
    "secret",
    "generic",
    "s",
    "-n",
    own,
    "--from-literal=a=b",
  ]);
  // (not the aggregated `view`: its rules come from a controller these
  // clusters do not run)
  await k([
    "create",
    "clusterrole",
    "read-all",
    "--verb=get,list,watch",
    "--resource=configmaps,pods",
  ]);
  await k([
    "create",
    "clusterrolebinding",
    "app-read-all",
    "--clusterrole=read-all",
    `--serviceaccount=${own}:${cluster.serviceAccount}`,
  ]);
}

/** Resolves once RBAC alone lets the ServiceAccount read `other`. */
async function untilReadable(cluster: Cluster, token: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (true) {
    const r = await cluster.kubectl(
      ["get", "configmaps", "-n", "other", "-o", "name"],
      { token, check: false },
    );
    if (r.code === 0) {
      assert.match(r.stdout, /^configmap\/other-/m);
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`RBAC never allowed: ${r.stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(command: string, args: string[]): Promise<Run> {
  const out = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** kubectl through mca; `get` answers with the names it printed. */
function kubectlVia(bin: string, config: string, cache: string) {
  return (args: string[]) =>
    run(bin, [`--kubeconfig=${config}`, `--cache-dir=${cache}`, ...args]);
}

function assertForbidden(r: Run, what: string): void {
  assert.notEqual(r.code, 0, `${what}: kubectl succeeded: ${r.stdout}`);
  assert.match(
    r.stderr,
    /Error from server \(Forbidden\): .* is forbidden: refused by the MCA call policy of this Pod/,
    what,
  );
}

interface Op {
  verb: "list" | "get";
  resource: "configmaps" | "pods" | "secrets";
  ns: string;
  name?: string;
}

async function checkKubectl(
  kubectl: (args: string[]) => Promise<Run>,
): Promise<void> {
  const names = async (args: string[]) => {
    const r = await kubectl([...args, "-o", "name"]);
    assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
    return r;
  };
  // the Pod's own namespace: pods on local, configmaps on east (remote-ns)
  assert.equal((await names(["get", "pods", "-n", OWN])).stdout, "");
  const own = await names(["get", "configmaps", "-n", OWN]);
  assert.match(own.stdout, /^configmap\/own-east\n/m);
  assert.ok(!own.stdout.includes("own-local"), "configmaps of app-ns: east");
  assert.equal(
    (await names(["get", "configmap", "own-east", "-n", OWN])).stdout,
    "configmap/own-east\n",
  );
  // other namespaces: refused, whatever RBAC says
  assertForbidden(await kubectl(["get", "configmaps", "-n", "other"]), "other");
  assertForbidden(
    await kubectl(["get", "configmaps", "-n", MAPPED]),
    "remote-ns named directly is local's remote-ns",
  );
  assertForbidden(await kubectl(["get", "namespaces"]), "cluster scope");
  assertForbidden(
    await kubectl(["get", "secrets", "-n", OWN]),
    "no-secrets in the own namespace",
  );
  // the grant: configmaps of shared on local, nothing more
  const shared = await names(["get", "configmaps", "-n", "shared"]);
  assert.match(shared.stdout, /configmap\/shared-local/);
  assert.ok(!shared.stdout.includes("shared-east"), "east left out");
  assert.match(
    shared.stderr,
    /Warning: mca: cluster east is left out by this Pod's call policy/,
  );
  assertForbidden(await kubectl(["get", "pods", "-n", "shared"]), "pods");
  const eastObject = await kubectl([
    "get",
    "configmap",
    "shared-east",
    "-n",
    "shared",
  ]);
  assert.notEqual(eastObject.code, 0);
  assert.match(eastObject.stderr, /\(NotFound\)/, "east is not searched");
}

async function checkPython(python: string, config: string): Promise<void> {
  const ops: Op[] = [
    { verb: "list", resource: "pods", ns: OWN },
    { verb: "list", resource: "configmaps", ns: OWN },
    { verb: "get", resource: "configmaps", ns: OWN, name: "own-east" },
    { verb: "list", resource: "configmaps", ns: "other" },
    { verb: "list", resource: "configmaps", ns: MAPPED },
    { verb: "get", resource: "secrets", ns: OWN, name: "s" },
    { verb: "list", resource: "configmaps", ns: "shared" },
    { verb: "list", resource: "pods", ns: "shared" },
    { verb: "get", resource: "configmaps", ns: "shared", name: "shared-east" },
  ];
  const r = await run(python, [SCRIPT, config, JSON.stringify(ops)]);
  assert.equal(r.code, 0, `iso.py: ${r.stderr}`);
  const out: Json[] = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(out.length, ops.length, r.stdout);
  const forbidden = (o: Json, what: string) => {
    // kubernetes 37 raises ForbiddenException (an ApiException) for a 403
    assert.equal(o.exception, "ForbiddenException", what);
    assert.equal(o.status, 403, what);
    assert.equal(o.reason, "Forbidden", what);
    assert.ok(o.message.includes(REFUSAL), `${what}: ${o.message}`);
  };
  // every namespace also holds kube-root-ca.crt (a controller's)
  const objects = (o: Json) =>
    o.names.filter((n: string) => n !== "kube-root-ca.crt");
  assert.deepEqual(out[0], { status: 200, names: [], warning: null });
  assert.equal(out[1].status, 200);
  assert.equal(out[1].warning, null);
  assert.deepEqual(
    objects(out[1]),
    ["own-east"],
    "app-ns is remote-ns on east",
  );
  assert.deepEqual(out[2].names, ["own-east"]);
  forbidden(out[3], "other");
  forbidden(out[4], "remote-ns named directly");
  forbidden(out[5], "secret");
  assert.deepEqual(objects(out[6]), ["shared-local"], "east left out");
  assert.match(out[6].warning, /cluster east is left out by this Pod's call/);
  forbidden(out[7], "pods of shared");
  assert.equal(out[8].status, 404, "east is not searched");
}

/**
 * The policy's verdicts and the audit log's counts on /metrics, read by the
 * Python prometheus_client parser: every refusal is a `deny` in enforce
 * mode, by rule or by isolation, and no event was dropped.
 */
async function checkMetrics(port: number, refusals: number): Promise<void> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  const f = await parseExposition(await r.text());
  const name = "mca_policy_decisions_total";
  const deny = { decision: "deny", mode: "enforce" };
  assert.ok(sumSamples(f, name, { ...deny, rule: "no-secrets" }) >= 1);
  assert.ok(
    sumSamples(f, name, { ...deny, basis: "isolation", rule: "" }) >= 1,
  );
  assert.ok(sumSamples(f, name, { decision: "allow" }) >= 1);
  // a refused call is denied on every cluster it could have gone to
  assert.ok(sumSamples(f, name, deny) >= refusals, "every refusal counted");
  assert.ok(sumSamples(f, "mca_audit_events_total", { result: "written" }) > 0);
  assert.equal(
    sumSamples(f, "mca_audit_events_total", { result: "dropped" }),
    0,
  );
  assert.equal(sumSamples(f, "mca_audit_errors_total"), 0);
}

/** The ResponseComplete events of the audit log. */
async function auditEvents(file: string): Promise<Json[]> {
  const text = await Deno.readTextFile(file);
  return text.trim().split("\n").map((l) => JSON.parse(l)).filter((e) =>
    e.stage === "ResponseComplete"
  );
}

function checkAudit(events: Json[]): void {
  const find = (
    verb: string,
    resource: string,
    ns: string,
    code: number,
  ) => {
    const e = events.find((e) =>
      e.verb === verb && e.objectRef?.resource === resource &&
      e.objectRef?.namespace === ns && e.responseStatus?.code === code
    );
    assert.ok(e, `an audit event for ${verb} ${resource} in ${ns} (${code})`);
    return e.annotations as Record<string, string>;
  };
  const own = find("list", "configmaps", OWN, 200);
  assert.equal(own["mca.io/clusters"], "east");
  assert.equal(own["mca.io/routing-rule"], "own-on-east");
  assert.equal(own["mca.io/policy-decision"], "allow");
  const shared = find("list", "configmaps", "shared", 200);
  assert.equal(shared["mca.io/clusters"], "local");
  assert.equal(shared["mca.io/missing-clusters"], "east");
  assert.equal(shared["mca.io/routing-rule"], "shared-both");
  assert.equal(shared["mca.io/policy-decision"], "partial");
  assert.equal(shared["mca.io/policy-rule"], "read-shared-local");
  assert.equal(shared["mca.io/policy-denied-clusters"], "east");
  assert.match(shared["mca.io/policy-reason"], /namespace isolation/);
  const secret = find("get", "secrets", OWN, 403);
  assert.equal(secret["mca.io/policy-decision"], "deny");
  assert.equal(secret["mca.io/policy-rule"], "no-secrets");
  assert.equal(secret["mca.io/policy-denied-clusters"], "local");
  const other = find("list", "configmaps", "other", 403);
  assert.equal(other["mca.io/policy-decision"], "deny");
  assert.equal(other["mca.io/policy-denied-clusters"], "local");
  assert.match(other["mca.io/policy-reason"], /namespace other/);
  const pods = find("list", "pods", "shared", 403);
  assert.equal(pods["mca.io/routing-rule"], "shared-both");
  assert.equal(pods["mca.io/policy-denied-clusters"], "local,east");
}

Deno.test({
  name:
    "policy e2e: isolation: namespace on two real clusters with namespace mapping (kubectl, Python)",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const dir = await Deno.makeTempDir({
    dir: join(ROOT, "tmp"),
    prefix: "policy-e2e-",
  });
  const rules = [
    ...DEFAULT_ROLE_RULES,
    { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list"] },
  ];
  const [python, A, B] = await Promise.all([
    buildSdk("python").then((b) => b.command[0]),
    startCluster({ dir: join(dir, "a"), namespace: OWN, rules }),
    startCluster({ dir: join(dir, "b"), namespace: MAPPED, rules }),
  ]);
  let sidecar: Sidecar | undefined;
  const logs: string[] = [];
  try {
    await Promise.all([seed(A, "local"), seed(B, "east")]);
    const saDir = join(dir, "sa");
    const [tokenA, tokenB] = await Promise.all([
      A.writeServiceAccountDir(saDir),
      B.mintToken({ duration: "1h" }),
    ]);
    // RBAC alone lets the ServiceAccount read "other": refusals are MCA's
    await Promise.all([untilReadable(A, tokenA), untilReadable(B, tokenB)]);
    const clustersDir = join(dir, "clusters");
    await writeProjectedVolume(clustersDir, {
      "east.kubeconfig": kubeconfig("east", B.url, {
        caPem: await Deno.readTextFile(B.caFile),
        token: tokenB,
      }),
    });
    const files = join(dir, "files");
    await Deno.mkdir(files);
    await Deno.writeTextFile(join(files, "routing.yaml"), ROUTING);
    await Deno.writeTextFile(join(files, "policy.yaml"), POLICY);
    await Deno.writeTextFile(join(files, "audit.yaml"), AUDIT_POLICY);
    const auditLog = join(dir, "audit.log");
    sidecar = await startSidecar({
      ...inProcessOptions(dir, A, { saDir, clustersDir }),
      routingConfig: join(files, "routing.yaml"),
      policyFile: join(files, "policy.yaml"),
      audit: { policyFile: join(files, "audit.yaml"), logPath: auditLog },
      healthIntervalMs: 200,
      log: (l) => logs.push(l),
      metrics: { hostname: "127.0.0.1", port: 0 },
    });
    const app = join(dir, "app");
    const config = join(dir, "app.kubeconfig");
    await Deno.writeTextFile(
      config,
      kubeconfig("mca", `https://127.0.0.1:${sidecar.proxy.port}`, {
        caPem: await Deno.readTextFile(join(app, "ca.crt")),
        token: (await Deno.readTextFile(join(app, "token"))).trim(),
      }),
    );
    await checkKubectl(kubectlVia(A.bin.kubectl, config, join(dir, "cache")));
    await checkPython(python, config);
    await sidecar.audit!.flush();
    checkAudit(await auditEvents(auditLog));
    const refusals = logs.map((l) => JSON.parse(l)).filter((l) =>
      l.msg === "api call" && l.status === 403
    );
    assert.ok(
      refusals.some((l) => l.policyRule === "no-secrets"),
      "the log line names the rule",
    );
    assert.ok(
      refusals.some((l) => l.policyRule === "isolation"),
      "a refusal by isolation says so, as its audit event does",
    );
    await checkMetrics(sidecar.metrics!.port, refusals.length);
    for (const token of [tokenA, tokenB]) {
      assert.ok(!logs.some((l) => l.includes(token)), "no token in the log");
      assert.ok(
        !(await Deno.readTextFile(auditLog)).includes(token),
        "no token in the audit log",
      );
    }
  } catch (error) {
    console.error(logs.slice(-30).join("\n"));
    throw error;
  } finally {
    await sidecar?.close();
    await Promise.all([A.stop(), B.stop()]);
  }
  await Deno.remove(dir, { recursive: true });
});
