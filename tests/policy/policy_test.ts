import assert from "node:assert/strict";
import fc from "fast-check";
import { parsePolicy, type Policy } from "../../lib/policy/config.ts";
import {
  evaluate,
  evaluator,
  type PolicyInput,
} from "../../lib/policy/evaluate.ts";
import { identityOf } from "../../lib/policy/identity.ts";
import { parseRequestInfo } from "../../lib/kube/request_info.ts";
import { PolicySource } from "../../lib/policy/source.ts";
import { applyPolicy } from "../../lib/multicluster/policy_step.ts";
import type { Plan } from "../../lib/routing/router.ts";

const EXAMPLE = `apiVersion: mca.io/v1alpha1
kind: Policy
mode: enforce
default: allow
rules:
  - name: no-secrets
    effect: deny
    verbs: [get, list, watch]
    apiGroups: [""]
    resources: [secrets]
    namespaces: ["*"]
    clusters: ["*"]
  - name: read-shared
    effect: allow
    verbs: [get, list, watch]
    resources: [configmaps]
    namespaces: [shared]
  - name: no-exec
    effect: deny
    resources: [pods/exec, "*/scale"]
`;

function input(method: string, target: string, cluster = "local"): PolicyInput {
  return { info: parseRequestInfo(method, target), cluster };
}

Deno.test("policy: the issue's example, verb by verb", () => {
  const policy = parsePolicy(EXAMPLE, "p.yaml");
  const v = (m: string, t: string) => evaluate(policy, input(m, t));
  assert.equal(v("GET", "/api/v1/namespaces/a/secrets/s").allowed, false);
  assert.equal(v("GET", "/api/v1/namespaces/a/secrets/s").rule, "no-secrets");
  assert.equal(v("GET", "/api/v1/secrets").allowed, false, "cluster-wide list");
  assert.equal(
    v("DELETE", "/api/v1/namespaces/a/secrets/s").allowed,
    true,
    "delete is not listed",
  );
  assert.equal(
    v("GET", "/api/v1/namespaces/a/configmaps").allowed,
    true,
    "default allow",
  );
  assert.equal(v("POST", "/api/v1/namespaces/a/pods/p/exec").allowed, false);
  assert.equal(
    v("PUT", "/apis/apps/v1/namespaces/a/deployments/d/scale").allowed,
    false,
  );
  assert.equal(
    v("GET", "/apis/apps/v1/namespaces/a/deployments/d").allowed,
    true,
  );
});

Deno.test("policy: isolation keeps a workload in its namespace unless a rule grants more", () => {
  const policy = parsePolicy(
    `apiVersion: mca.io/v1alpha1
kind: Policy
default: allow
isolation: namespace
rules:
  - {name: read-shared, effect: allow, verbs: [get, list], resources: [configmaps], namespaces: [shared]}
`,
    "p.yaml",
  );
  const identity = {
    username: "system:serviceaccount:app:sa",
    namespace: "app",
    serviceAccount: "sa",
  };
  const v = (t: string, namespace?: string) =>
    evaluate(policy, {
      info: parseRequestInfo("GET", t),
      cluster: "east",
      identity,
      namespace,
    });
  assert.equal(v("/api/v1/namespaces/app/pods").allowed, true);
  assert.equal(v("/api/v1/namespaces/other/pods").allowed, false);
  assert.equal(v("/api/v1/namespaces/shared/configmaps").allowed, true);
  assert.equal(v("/api/v1/nodes").allowed, false, "cluster-scoped");
  assert.equal(v("/api").allowed, true, "discovery");
  assert.equal(v("/version").allowed, true);
  assert.equal(v("/openapi/v3").allowed, true);
  // a namespace mapped on that cluster is checked as the cluster sees it
  assert.equal(v("/api/v1/namespaces/app/pods", "remote-app").allowed, false);
});

Deno.test("policy: errors name the file, the line and what to fix", () => {
  const cases: Array<[string, RegExp]> = [
    [
      "apiVersion: v1\nkind: Policy\n",
      /^p\.yaml:1: apiVersion must be mca\.io\/v1alpha1/,
    ],
    [
      "apiVersion: mca.io/v1alpha1\nkind: Policy\nmode: strict\n",
      /^p\.yaml:3: mode must be one of enforce, audit/,
    ],
    [
      "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - name: x\n    verbs: [get]\n",
      /^p\.yaml:4: rule 1 needs effect/,
    ],
    [
      "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - effect: deny\n    verb: [get]\n",
      /^p\.yaml:5: unknown key "verb"/,
    ],
    [
      "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules: [\n",
      /^p\.yaml:\d+: invalid YAML/,
    ],
    [
      "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - effect: allow\n    serviceAccounts: [justname]\n",
      /^p\.yaml:5: serviceAccounts entries are namespace\/name/,
    ],
  ];
  for (const [text, expected] of cases) {
    assert.throws(
      () => parsePolicy(text, "p.yaml"),
      (e: Error) => expected.test(e.message),
      text,
    );
  }
});

Deno.test("policy: deny overrides allow and the default holds (property)", () => {
  const verbs = ["get", "list", "watch", "create", "update", "patch", "delete"];
  const resources = ["pods", "secrets", "configmaps"];
  const rule = fc.record({
    effect: fc.constantFrom("allow" as const, "deny" as const),
    verbs: fc.option(fc.subarray(verbs, { minLength: 1 }), { nil: undefined }),
    resources: fc.option(fc.subarray(resources, { minLength: 1 }), {
      nil: undefined,
    }),
  });
  const targets = fc.record({
    method: fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE"),
    resource: fc.constantFrom(...resources),
    named: fc.boolean(),
  });
  fc.assert(
    fc.property(
      fc.array(rule, { maxLength: 6 }),
      fc.constantFrom("allow" as const, "deny" as const),
      targets,
      (rules, fallback, t) => {
        const policy: Policy = {
          mode: "enforce",
          default: fallback,
          rules: rules.map((r, i) => ({ ...r, name: `r${i}`, line: i + 1 })),
        };
        const target = `/api/v1/namespaces/n/${t.resource}${
          t.named || t.method !== "GET" && t.method !== "POST" ? "/x" : ""
        }`;
        const info = parseRequestInfo(t.method, target);
        const verdict = evaluate(policy, { info, cluster: "local" });
        // Independent oracle: which rules match, straight from the lists.
        const matches = policy.rules.filter((r) =>
          (r.verbs === undefined || r.verbs.includes(info.verb)) &&
          (r.resources === undefined || r.resources.includes(info.resource))
        );
        const expected = matches.some((r) => r.effect === "deny")
          ? false
          : matches.some((r) => r.effect === "allow")
          ? true
          : fallback === "allow";
        assert.equal(verdict.allowed, expected);
      },
    ),
    { seed: 7, numRuns: 3000 },
  );
});

Deno.test("policy: identity from a service-account token's claims, never the token", () => {
  const b64 = (o: unknown) =>
    btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(
      /\//g,
      "_",
    );
  const token = `${b64({ alg: "RS256" })}.${
    b64({
      sub: "system:serviceaccount:app:worker",
      "kubernetes.io": {
        namespace: "app",
        serviceaccount: { name: "worker", uid: "1" },
        pod: { name: "p-1", uid: "u-1" },
      },
    })
  }.c2ln`;
  const id = identityOf(token);
  assert.deepEqual(id, {
    username: "system:serviceaccount:app:worker",
    namespace: "app",
    serviceAccount: "worker",
    podName: "p-1",
    podUid: "u-1",
  });
  assert.ok(!JSON.stringify(id).includes("c2ln"));
  assert.equal(identityOf("not-a-jwt"), undefined);
  assert.equal(identityOf("a.b.c"), undefined);
});

Deno.test("policy step: isolation follows the routing rule's namespace mapping per cluster", async () => {
  const dir = await Deno.makeTempDir({ dir: "tmp", prefix: "policy-step-" });
  const file = `${dir}/policy.yaml`;
  await Deno.writeTextFile(
    file,
    `apiVersion: mca.io/v1alpha1
kind: Policy
default: allow
isolation: namespace
`,
  );
  const source = PolicySource.open(file, () => {});
  const identity = {
    username: "system:serviceaccount:app-ns:app",
    namespace: "app-ns",
    serviceAccount: "app",
  };
  const check = (target: string, plan: Plan) =>
    applyPolicy(plan, parseRequestInfo("GET", target), {
      policy: source.current,
      identity,
    });
  // app-ns is remote-ns on east (the rule maps it): the Pod's own there
  const mapped = check("/api/v1/namespaces/app-ns/configmaps", {
    kind: "one",
    cluster: "east",
    rule: "own-on-east",
    namespace: "remote-ns",
  });
  assert.equal(mapped.refused, false);
  assert.equal(mapped.decision.policy?.east.allowed, true);
  // remote-ns named by the app itself is not the Pod's own on any cluster
  const direct = check("/api/v1/namespaces/remote-ns/configmaps", {
    kind: "one",
    cluster: "local",
  });
  assert.equal(direct.refused, true);
  // without a mapping, the Pod's own namespace on every cluster of a fan-out
  const fan = check("/api/v1/namespaces/app-ns/pods", {
    kind: "fanout",
    clusters: ["local", "east"],
    missing: [],
    rule: "both",
  });
  assert.equal(fan.refused, false);
  assert.deepEqual(fan.decision.clusters, ["local", "east"]);
  const other = check("/api/v1/namespaces/other/pods", {
    kind: "fanout",
    clusters: ["local", "east"],
    missing: [],
    rule: "both",
  });
  assert.equal(other.refused, true);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("policy: the remembering evaluator gives evaluate's verdict for every input (property)", () => {
  const glob = (s: string) => new RegExp(`^${s.replace("*", ".*")}$`);
  const rule = fc.record({
    effect: fc.constantFrom("allow" as const, "deny" as const),
    verbs: fc.option(fc.subarray(["get", "list", "create", "delete"]), {
      nil: undefined,
    }),
    resources: fc.option(fc.subarray(["pods", "secrets", "pods/log"]), {
      nil: undefined,
    }),
    resourceNames: fc.option(fc.subarray(["a", "b"]), { nil: undefined }),
    namespaces: fc.option(
      fc.subarray(["app", "team-*", ""]).map((l) => l.map(glob)),
      { nil: undefined },
    ),
    clusters: fc.option(
      fc.subarray(["local", "east"]).map((l) => l.map(glob)),
      {
        nil: undefined,
      },
    ),
  });
  const call = fc.record({
    method: fc.constantFrom("GET", "POST", "DELETE"),
    path: fc.constantFrom(
      "/api/v1/namespaces/app/pods",
      "/api/v1/namespaces/app/pods/a",
      "/api/v1/namespaces/app/pods/b/log",
      "/api/v1/namespaces/team-x/secrets/a",
      "/api/v1/namespaces/other/pods/b",
      "/api/v1/nodes",
      "/version",
      "/metrics",
    ),
    cluster: fc.constantFrom("local", "east"),
    namespace: fc.option(fc.constantFrom("app", "remote-app"), {
      nil: undefined,
    }),
    own: fc.option(fc.constantFrom("app", "remote-app"), { nil: undefined }),
    sa: fc.option(fc.constantFrom("app", "other"), { nil: undefined }),
  });
  fc.assert(
    fc.property(
      fc.array(rule, { maxLength: 5 }),
      fc.constantFrom("allow" as const, "deny" as const),
      fc.boolean(),
      fc.array(call, { minLength: 1, maxLength: 30 }),
      (rules, fallback, isolated, calls) => {
        const policy: Policy = {
          mode: "enforce",
          default: fallback,
          ...(isolated ? { isolation: "namespace" as const } : {}),
          rules: rules.map((r, i) => ({ ...r, name: `r${i}`, line: i + 1 })),
        };
        const check = evaluator(policy);
        // twice over: the second pass is answered from the memo
        for (const c of [...calls, ...calls]) {
          const input: PolicyInput = {
            info: parseRequestInfo(c.method, c.path),
            cluster: c.cluster,
            namespace: c.namespace,
            ownNamespace: c.own,
            identity: c.sa
              ? {
                username: `system:serviceaccount:app:${c.sa}`,
                namespace: "app",
                serviceAccount: c.sa,
              }
              : undefined,
          };
          assert.deepEqual(check(input), evaluate(policy, input));
        }
      },
    ),
    { seed: 11, numRuns: 1000 },
  );
});
