/**
 * The SDK compatibility matrix: real Kubernetes SDKs, each with nothing but
 * its default in-cluster configuration, run in a simulated app container of
 * an injected Pod and talk to a real kube-apiserver through `mca` (itself in
 * the Pod's simulated `mca` container).
 *
 * Every SDK lives in `tests/e2e/sdk/<name>/`: `build.sh` builds or installs
 * it under `~/.cache/mca/sdk/<name>/` and prints, on its last stdout line,
 * `{"command": [...], "version": "..."}`; the command prints one
 * `{"op", "ok", "detail"}` JSON line per operation of {@linkcode OPS}.
 *
 * Results go to `tmp/e2e/compat.json` and `tmp/e2e/compat.md`. The test
 * fails unless every operation of every SDK passed, bar the entries of
 * {@linkcode KNOWN_LIMITATIONS}. A missing SDK (no `build.sh`) fails too.
 *
 * Env (development only):
 * - `MCA_E2E_SDKS=kubectl,python` runs a subset (the run then fails at the
 *   end, naming the SDKs left out, so a filtered run never looks green);
 * - `MCA_E2E_DIRECT=1` runs the SDKs against the API server without `mca`
 *   (to tell an SDK program's bug from an `mca` bug); it fails at the end
 *   for the same reason.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SA_PATH } from "../../lib/inject/pod_spec.ts";
import { injectManifests } from "../../lib/inject/manifest.ts";
import {
  type Cluster,
  DEFAULT_ROLE_RULES,
  ensureToolchain,
  type PolicyRule,
  startCluster,
} from "../support/cluster.ts";
import {
  POLICY_DIR,
  POLICY_KEY,
  POLICY_VOLUME,
} from "../../lib/inject/names.ts";
import {
  parsePod,
  type PodNetwork,
  spawnInPod,
  startPodNetwork,
} from "../support/pod.ts";
import {
  buildSdk,
  type Built,
  callLines,
  mcaContainer,
  type McaProcess,
  mcaProxyArgs,
  startMca,
  stopMca,
  waitReady,
} from "../support/mca_pod.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TMP_E2E = join(ROOT, "tmp", "e2e");

/** Every SDK of the matrix; each must have `tests/e2e/sdk/<name>/build.sh`. */
export const SDKS = [
  "kubectl",
  "client-go",
  "python",
  "client-node",
  "java-official",
  "fabric8",
  "rust",
  "ruby",
] as const;

/** The operations every program reports, in order. */
export const OPS = [
  "whoami",
  "get",
  "list",
  "create",
  "patch-merge",
  "apply",
  "watch",
  "delete",
  "forbidden",
] as const;

/**
 * Operations an SDK genuinely cannot do (e.g. no server-side apply), as
 * `{ sdk: { op: reason } }`. Keep it empty unless the SDK itself lacks the
 * feature: a failure caused by `mca` never belongs here.
 */
export const KNOWN_LIMITATIONS: Record<string, Record<string, string>> = {};

const RUN_TIMEOUT_MS = 120_000;
/** Requests each program makes at least (one per op, the watch's patch too). */
const MIN_PROXIED_PER_SDK = 10;

interface OpResult {
  ok: boolean;
  detail: string;
}

interface Row {
  sdk: string;
  version: string;
  ok: boolean;
  ops: Record<string, OpResult & { known?: string }>;
  error?: string;
  exitCode?: number;
  buildMs?: number;
  runMs?: number;
  proxiedCalls?: number;
  stderrTail?: string;
}

const decoder = new TextDecoder();

function progress(message: string): void {
  console.error(`sdk-matrix: ${message}`);
}

function selectedSdks(all: readonly string[]): string[] {
  const filter = Deno.env.get("MCA_E2E_SDKS")?.trim();
  if (!filter) return [...all];
  const wanted = filter.split(",").map((s) => s.trim()).filter(Boolean);
  for (const name of wanted) {
    if (!(SDKS as readonly string[]).includes(name)) {
      throw new Error(`MCA_E2E_SDKS names an unknown SDK: ${name}`);
    }
  }
  return wanted.filter((name) => all.includes(name));
}

/** A Pod with one app container, as a user would write it. */
function appPod(cluster: Cluster): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "sdk-matrix", namespace: cluster.namespace },
    spec: {
      serviceAccountName: cluster.serviceAccount,
      containers: [{
        name: "app",
        image: "example.com/sdk-matrix-app:1",
        // Read by the programs to check whoami (the namespace comes from
        // the service-account directory).
        env: [{ name: "MCA_E2E_SA", value: cluster.serviceAccount }],
      }],
    },
  };
}

/** The same Pod as the kubelet would run it without MCA (direct mode). */
function directPod(cluster: Cluster): Record<string, unknown> {
  const pod = structuredClone(appPod(cluster)) as {
    spec: { containers: Record<string, unknown>[] };
  };
  pod.spec.containers[0].volumeMounts = [
    { name: "kube-api-access-sa", mountPath: SA_PATH, readOnly: true },
  ];
  return pod;
}

async function runProgram(
  built: Built,
  pod: Record<string, unknown>,
  cluster: Cluster,
  volumes: Record<string, string>,
  home: string,
  netns: string | undefined,
): Promise<
  { code: number; stdout: string; stderr: string; timedOut: boolean }
> {
  await Deno.mkdir(home, { recursive: true });
  const child = spawnInPod(pod, "app", {
    volumes,
    command: built.command,
    serviceEnv: cluster.serviceEnv(),
    home,
    netns,
  }, { stdout: "piped", stderr: "piped" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, RUN_TIMEOUT_MS);
  // Whatever was printed before a timeout still counts.
  const out = await child.output();
  clearTimeout(timer);
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    timedOut,
  };
}

function judge(
  name: string,
  version: string,
  run: { code: number; stdout: string; stderr: string; timedOut: boolean },
  cluster: Cluster,
): Row {
  const reported = new Map<string, OpResult>();
  for (const line of run.stdout.split("\n")) {
    if (!line.trim().startsWith("{")) continue;
    try {
      const v = JSON.parse(line);
      if (typeof v.op === "string" && typeof v.ok === "boolean") {
        reported.set(v.op, { ok: v.ok, detail: String(v.detail ?? "") });
      }
    } catch {
      // not a result line
    }
  }
  const ops: Row["ops"] = {};
  for (const op of OPS) {
    const r = reported.get(op) ?? {
      ok: false,
      detail: run.timedOut
        ? `not reported: killed after ${RUN_TIMEOUT_MS / 1000} s`
        : `not reported (exit code ${run.code})`,
    };
    // The runner checks the identity too, whatever the program concluded.
    if (op === "whoami" && r.ok && r.detail !== cluster.serviceAccountUser) {
      r.ok = false;
      r.detail += ` (expected ${cluster.serviceAccountUser})`;
    }
    const known = KNOWN_LIMITATIONS[name]?.[op];
    ops[op] = known === undefined ? r : { ...r, known };
  }
  const ok = run.code === 0 &&
    OPS.every((op) => ops[op].ok || ops[op].known !== undefined);
  return {
    sdk: name,
    version,
    ok,
    ops,
    exitCode: run.code,
    stderrTail: run.code === 0 && ok
      ? undefined
      : run.stderr.trim().split("\n").slice(-15).join("\n"),
  };
}

function markdown(rows: Row[], meta: Record<string, string>): string {
  const cell = (r: Row, op: string) => {
    const o = r.ops[op];
    if (o.ok) return "pass";
    if (o.known !== undefined) return `n/a (${o.known})`;
    return "**FAIL**";
  };
  const out = [
    "# MCA SDK compatibility matrix",
    "",
    ...Object.entries(meta).map(([k, v]) => `- ${k}: ${v}`),
    "",
    `| SDK | version | ${OPS.join(" | ")} | calls via mca |`,
    `|---|---|${OPS.map(() => "---").join("|")}|---|`,
    ...rows.map((r) =>
      `| ${r.sdk} | ${r.version} | ${
        OPS.map((op) => cell(r, op)).join(" | ")
      } | ${r.proxiedCalls ?? "-"} |`
    ),
    "",
  ];
  const failures = rows.flatMap((r) => [
    ...(r.error ? [`- ${r.sdk}: ${r.error}`] : []),
    ...OPS.filter((op) => !r.ops[op].ok && r.ops[op].known === undefined)
      .filter(() => !r.error)
      .map((op) => `- ${r.sdk} ${op}: ${r.ops[op].detail}`),
  ]);
  if (failures.length > 0) out.push("## Failures", "", ...failures, "");
  return out.join("\n");
}

/** One run of the matrix: which SDKs, and the call policy `mca` enforces. */
interface MatrixRun {
  /** Names the report files (`<report>.json`, `<report>.md`). */
  report: string;
  sdks: string[];
  /** Every SDK the run must cover (a subset via MCA_E2E_SDKS fails). */
  all: readonly string[];
  direct: boolean;
  /** A `--policy` file for `mca`, mounted the way the injector wires it. */
  policyYaml?: string;
  /** The Role of the test ServiceAccount (the RBAC under the policy). */
  rules?: readonly PolicyRule[];
}

async function runMatrix(matrix: MatrixRun): Promise<void> {
  const { sdks, direct } = matrix;
  await ensureToolchain();
  const dir = join(
    TMP_E2E,
    `${matrix.report}-${crypto.randomUUID().slice(0, 8)}`,
  );
  const dirs = {
    sa: join(dir, "sa"),
    mcaSa: join(dir, "mca-sa"),
    state: join(dir, "mca-state"),
    mcaHome: join(dir, "home-mca"),
  };
  for (const d of Object.values(dirs)) await Deno.mkdir(d, { recursive: true });
  progress(`starting a cluster in ${dir}`);
  const cluster = await startCluster({
    dir: join(dir, "cluster"),
    rules: matrix.rules,
  });
  let mca: McaProcess | undefined;
  let net: PodNetwork | undefined;
  let passed = false;
  const rows: Row[] = [];
  try {
    // The Pod's own network: mca's 127.0.0.1:6443 cannot clash with another
    // test run on this machine, and the API server is reachable at its
    // host address, as a Service would be.
    net = await startPodNetwork({
      dir: join(dir, "net"),
      forward: [{ host: cluster.host, port: cluster.port }],
    });
    const realToken = await cluster.writeServiceAccountDir(dirs.sa);
    const injected = parsePod(
      injectManifests(
        JSON.stringify(appPod(cluster)),
        matrix.policyYaml ? { policyConfigMap: "mca-policy" } : {},
      ),
    );
    const mcaVolumes: Record<string, string> = {
      "kube-api-access-sa": dirs.sa,
      "kube-api-access-mca-sa": dirs.mcaSa,
      "mca-state": dirs.state,
    };
    const extraArgs: string[] = [];
    if (matrix.policyYaml) {
      const policyDir = join(dir, "policy");
      await Deno.mkdir(policyDir, { recursive: true });
      await Deno.writeTextFile(join(policyDir, POLICY_KEY), matrix.policyYaml);
      mcaVolumes[POLICY_VOLUME] = policyDir;
      extraArgs.push("--policy", `${POLICY_DIR}/${POLICY_KEY}`);
    }
    let appPodObject = injected;
    let appVolumes: Record<string, string> = {
      "kube-api-access-mca-sa": dirs.mcaSa,
    };
    if (direct) {
      progress("MCA_E2E_DIRECT=1: SDKs talk to the API server directly");
      appPodObject = directPod(cluster);
      appVolumes = { "kube-api-access-sa": dirs.sa };
    } else {
      progress("starting mca in its simulated container");
      mca = startMca(
        injected,
        mcaContainer(
          cluster,
          mcaVolumes,
          dirs.mcaHome,
          net.nsPath,
          mcaProxyArgs(extraArgs),
        ),
        join(dir, "mca.log"),
      );
      const probe = mcaContainer(
        cluster,
        mcaVolumes,
        dirs.mcaHome,
        net.nsPath,
        ["--probe", "--timeout-ms", "2000"],
      );
      await waitReady(mca, () => spawnInPod(injected, "mca", probe).output());
      progress("mca is ready");
    }

    for (const name of sdks) {
      const row: Row = {
        sdk: name,
        version: "?",
        ok: false,
        ops: Object.fromEntries(
          OPS.map((op) => [op, { ok: false, detail: "not run" }]),
        ),
      };
      try {
        progress(`${name}: building`);
        const t0 = performance.now();
        const built = await buildSdk(name);
        const buildMs = Math.round(performance.now() - t0);
        progress(`${name}: built in ${buildMs} ms (${built.version}); running`);
        await cluster.kubectl([
          "create",
          "configmap",
          `sdk-${name}-seed`,
          `--namespace=${cluster.namespace}`,
          "--from-literal=seed=yes",
        ]);
        const before = mca?.lines.length ?? 0;
        const t1 = performance.now();
        const run = await runProgram(
          built,
          appPodObject,
          cluster,
          appVolumes,
          join(dir, `home-${name}`),
          net.nsPath,
        );
        const judged = judge(name, built.version, run, cluster);
        Object.assign(row, judged, {
          buildMs,
          runMs: Math.round(performance.now() - t1),
        });
        if (mca) {
          // mca writes its log in batches (every 10 ms): wait for the last
          // operation's line (the 403 on secrets) before counting.
          const deadline = Date.now() + 5000;
          while (
            Date.now() < deadline &&
            !callLines(mca.lines.slice(before)).some((c) =>
              c.resource === "secrets" && c.status === 403
            )
          ) {
            await new Promise((r) => setTimeout(r, 20));
          }
          const calls = callLines(mca.lines.slice(before));
          row.proxiedCalls = calls.length;
          // Under a policy the 403 must be MCA's own (RBAC allows secrets).
          const sawForbidden = calls.some((c) =>
            c.resource === "secrets" && c.status === 403 &&
            (!matrix.policyYaml || c.policyRule === "no-secrets")
          );
          if (calls.length < MIN_PROXIED_PER_SDK || !sawForbidden) {
            row.ok = false;
            row.error = `mca logged ${calls.length} API calls during the run ` +
              `(want >= ${MIN_PROXIED_PER_SDK}), a 403 on secrets: ${sawForbidden}`;
          }
        }
        if (run.timedOut) {
          row.error = `program killed after ${RUN_TIMEOUT_MS / 1000} s`;
        } else if (judged.exitCode !== 0) {
          row.error = `program exited with code ${judged.exitCode}`;
        }
      } catch (error) {
        row.error = (error as Error).message;
      }
      const failed = OPS.filter((op) => !row.ops[op].ok);
      progress(
        `${name}: ${
          row.ok
            ? "all ops passed"
            : `FAILED ${failed.join(", ")}${row.error ? ` (${row.error})` : ""}`
        }`,
      );
      rows.push(row);
    }

    // The report, before any assertion can stop the test.
    const meta = {
      date: new Date().toISOString(),
      "API server": "kube-apiserver v1.34.4 (tests/e2e/toolchain)",
      path: direct ? "DIRECT (no mca): development run" : "through mca",
      policy: matrix.policyYaml ? "an MCA call policy refuses secrets" : "none",
      sdks: sdks.length === matrix.all.length
        ? "all"
        : `subset via MCA_E2E_SDKS: ${sdks.join(",")}`,
    };
    await Deno.mkdir(TMP_E2E, { recursive: true });
    await Deno.writeTextFile(
      join(TMP_E2E, `${matrix.report}.json`),
      JSON.stringify({ ...meta, ops: OPS, rows }, null, 2) + "\n",
    );
    await Deno.writeTextFile(
      join(TMP_E2E, `${matrix.report}.md`),
      markdown(rows, meta),
    );
    progress(`wrote ${join(TMP_E2E, matrix.report)}.md and .json`);

    if (mca) {
      await stopMca(mca);
      const calls = callLines(mca.lines);
      assert.ok(calls.length > 0, "mca logged no proxied API call");
      const leaks = [...mca.lines, ...mca.stderr].filter((l) =>
        l.includes(realToken)
      );
      assert.equal(leaks.length, 0, "an mca log line contains the real token");
      const notJson = mca.lines.filter((l) => {
        try {
          JSON.parse(l);
          return false;
        } catch {
          return true;
        }
      });
      assert.deepEqual(notJson, [], "mca's stdout has non-JSON lines");
    }

    for (const row of rows) {
      for (const op of OPS) {
        const o = row.ops[op];
        if (o.known !== undefined && o.ok) {
          throw new Error(
            `KNOWN_LIMITATIONS lists ${row.sdk}/${op} but it passed: remove the entry`,
          );
        }
      }
    }
    const failures = rows.filter((r) => !r.ok).map((r) =>
      `${r.sdk}: ${r.error ?? ""} ${
        OPS.filter((op) => !r.ops[op].ok && r.ops[op].known === undefined)
          .map((op) => `${op}: ${r.ops[op].detail}`).join("; ")
      }${r.stderrTail ? `\n  stderr: ${r.stderrTail}` : ""}`
    );
    assert.deepEqual(
      failures,
      [],
      `SDKs failed (see tmp/e2e/${matrix.report}.md)`,
    );
    assert.ok(
      !direct,
      "MCA_E2E_DIRECT=1 is a development mode: mca was not tested",
    );
    assert.deepEqual(
      sdks,
      [...matrix.all],
      "MCA_E2E_SDKS ran a subset: the matrix is incomplete",
    );
    passed = true;
  } finally {
    if (mca) await stopMca(mca);
    await net?.close();
    await cluster.stop();
  }
  // Logs of a failed run stay for inspection; a green run leaves only the
  // report.
  if (passed) await Deno.remove(dir, { recursive: true });
}

Deno.test({
  name: "SDK matrix: every SDK's in-cluster config works through mca",
  sanitizeResources: false,
  sanitizeOps: false,
}, () =>
  runMatrix({
    report: "compat",
    sdks: selectedSdks(SDKS),
    all: SDKS,
    direct: Deno.env.get("MCA_E2E_DIRECT") === "1",
  }));

/** The SDKs the call-policy run covers: a CLI, Go, Python and a JVM SDK. */
const POLICY_SDKS = ["kubectl", "client-go", "python", "java-official"];

/**
 * RBAC lets the ServiceAccount read secrets; MCA's policy refuses them. Each
 * SDK must see its usual forbidden error for MCA's 403, every other call
 * goes through, and the log names the rule.
 */
const POLICY = `apiVersion: mca.io/v1alpha1
kind: Policy
mode: enforce
default: allow
rules:
  - name: no-secrets
    effect: deny
    verbs: ["*"]
    apiGroups: [""]
    resources: [secrets]
`;

Deno.test({
  name:
    "SDK matrix: an MCA call policy refusal is each SDK's usual forbidden error",
  sanitizeResources: false,
  sanitizeOps: false,
}, () =>
  runMatrix({
    report: "policy-compat",
    sdks: selectedSdks(POLICY_SDKS),
    all: POLICY_SDKS,
    direct: false,
    policyYaml: POLICY,
    rules: [
      ...DEFAULT_ROLE_RULES,
      { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list"] },
    ],
  }));
