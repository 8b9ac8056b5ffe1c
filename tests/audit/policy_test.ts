import assert from "node:assert/strict";
import {
  type AuditAttributes,
  AuditPolicyError,
  evaluateAuditPolicy,
  parseAuditPolicy,
} from "../../lib/audit/policy.ts";
import { parseRequestInfo } from "../../lib/kube/request_info.ts";

const POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: ["system:kube-proxy"]
  - level: None
    nonResourceURLs: ["/healthz*", "/version"]
  - level: RequestResponse
    omitManagedFields: true
    resources:
      - group: ""
        resources: ["configmaps"]
        resourceNames: ["controller-leader"]
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets", "configmaps"]
  - level: Request
    verbs: ["create", "update", "patch"]
    resources:
      - group: apps
        resources: ["deployments/*"]
      - group: ""
        resources: ["*/exec"]
  - level: Metadata
    userGroups: ["system:serviceaccounts:team-a"]
    namespaces: ["team-a", ""]
    omitStages: [ResponseStarted]
  - level: Request
    resources:
      - group: batch
  - level: Metadata
    nonResourceURLs: ["/apis*"]
`;

const policy = parseAuditPolicy(POLICY, { file: "p.yaml" });
const sa = (ns: string) => ({
  username: `system:serviceaccount:${ns}:app`,
  groups: [
    "system:serviceaccounts",
    `system:serviceaccounts:${ns}`,
    "system:authenticated",
  ],
});

function attrs(
  method: string,
  target: string,
  user: AuditAttributes["user"] = sa("default"),
): AuditAttributes {
  return { ...parseRequestInfo(method, target), user };
}

const table: Array<[string, AuditAttributes, string]> = [
  [
    "user rule",
    attrs("GET", "/api/v1/pods", { username: "system:kube-proxy", groups: [] }),
    "None",
  ],
  ["healthz prefix", attrs("GET", "/healthz/etcd"), "None"],
  ["version exact", attrs("GET", "/version"), "None"],
  ["/versionx not exact", attrs("GET", "/versionx"), "None"],
  [
    "resourceNames match",
    attrs("GET", "/api/v1/namespaces/a/configmaps/controller-leader"),
    "RequestResponse",
  ],
  [
    "resourceNames miss falls through",
    attrs("GET", "/api/v1/namespaces/a/configmaps/other"),
    "Metadata",
  ],
  ["list secrets", attrs("GET", "/api/v1/secrets"), "Metadata"],
  [
    "subresource resource/*",
    attrs("PUT", "/apis/apps/v1/namespaces/a/deployments/d/scale"),
    "Request",
  ],
  [
    "resource/* also matches the resource itself (checker.go)",
    attrs("POST", "/apis/apps/v1/namespaces/a/deployments"),
    "Request",
  ],
  ["*/exec", attrs("POST", "/api/v1/namespaces/a/pods/p/exec"), "Request"],
  ["verbs filter", attrs("GET", "/api/v1/namespaces/a/pods/p/exec"), "None"],
  [
    "group + namespace",
    attrs("GET", "/api/v1/namespaces/team-a/pods", sa("team-a")),
    "Metadata",
  ],
  [
    'cluster-scoped is namespace ""',
    attrs("GET", "/api/v1/nodes", sa("team-a")),
    "Metadata",
  ],
  [
    "other namespace",
    attrs("GET", "/api/v1/namespaces/team-b/pods", sa("team-a")),
    "None",
  ],
  [
    "no user: userGroups rule skipped",
    attrs("GET", "/api/v1/namespaces/team-a/pods", undefined),
    "None",
  ],
  [
    "group without resources = whole group",
    attrs("DELETE", "/apis/batch/v1/namespaces/a/jobs/j"),
    "Request",
  ],
  ["non-resource prefix", attrs("GET", "/apis/apps"), "Metadata"],
  [
    "resource request never matches nonResourceURLs",
    attrs("GET", "/apis/apps/v1/deployments"),
    "None",
  ],
];

for (const [name, a, level] of table) {
  Deno.test(`audit policy: ${name} → ${level}`, () => {
    assert.equal(evaluateAuditPolicy(policy, a).level, level);
  });
}

Deno.test("audit policy: stages are the union of policy and rule; omitManagedFields inherits", () => {
  const c = evaluateAuditPolicy(
    policy,
    attrs("GET", "/api/v1/namespaces/team-a/pods", sa("team-a")),
  );
  assert.deepEqual([...c.omitStages].sort(), [
    "RequestReceived",
    "ResponseStarted",
  ]);
  assert.equal(c.omitManagedFields, false);
  const leader = evaluateAuditPolicy(
    policy,
    attrs("GET", "/api/v1/namespaces/a/configmaps/controller-leader"),
  );
  assert.equal(leader.omitManagedFields, true);
  assert.deepEqual([...leader.omitStages], ["RequestReceived"]);
});

Deno.test("audit policy: a rule with no conditions matches everything", () => {
  const p = parseAuditPolicy(
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
    { file: "f" },
  );
  assert.equal(
    evaluateAuditPolicy(p, attrs("GET", "/livez")).level,
    "Metadata",
  );
});

const bad: Array<[string, string, RegExp]> = [
  [
    "wrong kind",
    "apiVersion: audit.k8s.io/v1\nkind: Pol\nrules: []\n",
    /^f\.yaml:1: expected apiVersion: audit\.k8s\.io\/v1 and kind: Policy/,
  ],
  [
    "no rules",
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n",
    /^f\.yaml:3: rules must be a non-empty list/,
  ],
  [
    "bad level",
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Everything\n",
    /^f\.yaml:4: rule 1: level must be None, Metadata/,
  ],
  [
    "unknown key",
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    namespace: [a]\n",
    /^f\.yaml:5: rule 1: unknown key "namespace"/,
  ],
  [
    "bad stage",
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [Done]\nrules:\n  - level: None\n",
    /^f\.yaml:3: omitStages: unknown stage "Done"/,
  ],
  [
    "urls and resources",
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    namespaces: [a]\n    nonResourceURLs: [/x]\n",
    /^f\.yaml:4: rule 1: rules cannot apply to both/,
  ],
  [
    "url without slash",
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    nonResourceURLs:\n      - healthz\n",
    /^f\.yaml:6: rule 1: nonResourceURLs must start with "\/"/,
  ],
  [
    "star in middle",
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    nonResourceURLs: [/a*/b]\n",
    /^f\.yaml:5: rule 1: "\*" is allowed only at the end/,
  ],
  [
    "resourceNames without resources",
    'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    resources:\n      - group: ""\n        resourceNames: [x]\n',
    /^f\.yaml:6: rule 1: using resourceNames requires at least one resource/,
  ],
  [
    "bad group",
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    resources:\n      - group: Apps\n",
    /^f\.yaml:6: rule 1: group must be/,
  ],
  [
    "invalid yaml",
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: [None\n",
    /^f\.yaml:\d+: invalid YAML/,
  ],
  [
    "users not a list",
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    users: bob\n",
    /^f\.yaml:5: rule 1: users must be a list of strings/,
  ],
];
for (const [name, text, message] of bad) {
  Deno.test(`audit policy error: ${name}`, () => {
    assert.throws(
      () => parseAuditPolicy(text, { file: "f.yaml" }),
      (e: unknown) => {
        assert.ok(e instanceof AuditPolicyError);
        assert.match(e.message, message);
        return true;
      },
    );
  });
}
