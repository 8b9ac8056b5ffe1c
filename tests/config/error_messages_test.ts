import assert from "node:assert/strict";
import { parseAuditPolicy } from "../../lib/audit/policy.ts";
import { parsePolicy } from "../../lib/policy/config.ts";
import { parseRoutingConfig } from "../../lib/routing/config.ts";

// The exact error of every check of the three configuration parsers
// (routing, call policy, audit policy), recorded before they shared
// lib/config/: a refactor must not change a byte of what an operator reads.

function message(parse: () => unknown): string {
  try {
    parse();
    return "OK";
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
}

const ROUTING: Array<[string, string]> = [
  [
    "a: [\n",
    "RoutingConfigError: r.yaml:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
  ],
  [
    "- a\n",
    "RoutingConfigError: r.yaml:1: the configuration must be a mapping",
  ],
  [
    "just a string\n",
    "RoutingConfigError: r.yaml:1: the configuration must be a mapping",
  ],
  [
    "rulez: []\n",
    'RoutingConfigError: r.yaml:1: unknown key "rulez" (expected discovery, default, rules)',
  ],
  [
    "? [a]\n: 1\n",
    'RoutingConfigError: r.yaml:1: unknown key "" (expected discovery, default, rules)',
  ],
  [
    "discovery: [a]\n",
    "RoutingConfigError: r.yaml:1: discovery must be a cluster name",
  ],
  [
    "discovery: mars\n",
    'RoutingConfigError: r.yaml:1: unknown cluster "mars" in discovery (known: east, local, west)',
  ],
  [
    "default: mars\n",
    'RoutingConfigError: r.yaml:1: unknown cluster "mars" in default (known: east, local, west)',
  ],
  ["rules: {a: 1}\n", "RoutingConfigError: r.yaml:1: rules must be a list"],
  ["rules: null\n", "RoutingConfigError: r.yaml:1: rules must be a list"],
  ["rules:\n", "RoutingConfigError: r.yaml:1: rules must be a list"],
  [
    "discovery:\n",
    "RoutingConfigError: r.yaml:1: discovery must be a cluster name",
  ],
  ["~\n", "OK"],
  [
    "rules:\n  - {cluster: east, match: null}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1: match must be a mapping",
  ],
  [
    'rules:\n  - {cluster: east, match: {verbs: ["*", fly]}}\n',
    'RoutingConfigError: r.yaml:2: rule rule-1: unknown verb "fly" (expected one of get, list, watch, create, update, patch, delete, deletecollection)',
  ],
  ["rules:\n  - x\n", "RoutingConfigError: r.yaml:2: rule 1 must be a mapping"],
  [
    "rules:\n  - {cluster: east, colour: red}\n",
    'RoutingConfigError: r.yaml:2: rule 1: unknown key "colour"',
  ],
  [
    "rules:\n  - {name: n, cluster: east, match: [a]}\n",
    "RoutingConfigError: r.yaml:2: rule n: match must be a mapping",
  ],
  [
    "rules:\n  - {name: n, cluster: east, match: {nmespaces: [a]}}\n",
    'RoutingConfigError: r.yaml:2: rule n: unknown match key "nmespaces"',
  ],
  [
    "rules:\n  - {cluster: east, match: {namespaces: a}}\n",
    "RoutingConfigError: r.yaml:2: match.namespaces must be a list",
  ],
  [
    'rules:\n  - {cluster: east, match: {namespaces: [""]}}\n',
    "RoutingConfigError: r.yaml:2: match.namespaces must be a list of non-empty strings",
  ],
  [
    "rules:\n  - {cluster: east, match: {namespaces: [1]}}\n",
    "RoutingConfigError: r.yaml:2: match.namespaces must be a list of non-empty strings",
  ],
  [
    'rules:\n  - {cluster: east, match: {namespaces: ["team-[a]"]}}\n',
    'RoutingConfigError: r.yaml:2: rule rule-1: bad namespace glob "team-[a]" (use letters, digits, -, * and ?)',
  ],
  [
    'rules:\n  - {cluster: east, match: {resources: ["a/b/c"]}}\n',
    'RoutingConfigError: r.yaml:2: rule rule-1: bad resource "a/b/c" (expected resource[.group][/subresource], e.g. deployments.apps)',
  ],
  [
    'rules:\n  - {cluster: east, match: {resources: ["Pods"]}}\n',
    'RoutingConfigError: r.yaml:2: rule rule-1: bad resource "Pods" (expected resource[.group][/subresource], e.g. deployments.apps)',
  ],
  ['rules:\n  - {cluster: east, match: {resources: ["pods."]}}\n', "OK"],
  [
    'rules:\n  - {cluster: east, match: {resources: ["pods/"]}}\n',
    'RoutingConfigError: r.yaml:2: rule rule-1: bad resource "pods/" (expected resource[.group][/subresource], e.g. deployments.apps)',
  ],
  [
    "rules:\n  - {cluster: east, match: {verbs: [fly]}}\n",
    'RoutingConfigError: r.yaml:2: rule rule-1: unknown verb "fly" (expected one of get, list, watch, create, update, patch, delete, deletecollection)',
  ],
  [
    "rules:\n  - {cluster: east, match: {verbs: get}}\n",
    "RoutingConfigError: r.yaml:2: match.verbs must be a list",
  ],
  [
    "rules:\n  - {cluster: east, match: {labels: [a]}}\n",
    'RoutingConfigError: r.yaml:2: rule rule-1: match.labels must be a selector string such as "tier=frontend"',
  ],
  [
    'rules:\n  - {cluster: east, match: {labels: "a in"}}\n',
    'RoutingConfigError: r.yaml:2: rule rule-1: bad label selector: cannot parse "a in" in selector "a in"',
  ],
  [
    'rules:\n  - {cluster: east, match: {labels: "!!"}}\n',
    'RoutingConfigError: r.yaml:2: rule rule-1: bad label selector: invalid label key "!" in selector "!!"',
  ],
  [
    "rules:\n  - {name: x}\n",
    "RoutingConfigError: r.yaml:2: rule x: give exactly one of cluster or clusters",
  ],
  [
    "rules:\n  - {cluster: east, clusters: [west]}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1: give exactly one of cluster or clusters",
  ],
  [
    "rules:\n  - {cluster: mars}\n",
    'RoutingConfigError: r.yaml:2: unknown cluster "mars" in rule rule-1 (known: east, local, west)',
  ],
  [
    "rules:\n  - {cluster: [east]}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1 must be a cluster name",
  ],
  [
    "rules:\n  - {clusters: []}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1: clusters is empty",
  ],
  [
    "rules:\n  - {clusters: east}\n",
    "RoutingConfigError: r.yaml:2: clusters must be a list",
  ],
  [
    "rules:\n  - {clusters: [east, mars]}\n",
    'RoutingConfigError: r.yaml:2: unknown cluster "mars" in rule rule-1 (known: east, local, west)',
  ],
  [
    "rules:\n  - {clusters: [east, 3]}\n",
    "RoutingConfigError: r.yaml:2: clusters must be a list of non-empty strings",
  ],
  [
    "rules:\n  - {clusters: [east, west], strategy: random}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1: strategy must be first-healthy, round-robin or weighted",
  ],
  [
    "rules:\n  - {clusters: [east, west], strategy: [a]}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1: strategy must be first-healthy, round-robin or weighted",
  ],
  [
    "rules:\n  - {clusters: [east, west], weights: [1]}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1: weights must be a mapping of cluster to number",
  ],
  [
    "rules:\n  - {clusters: [east, west], weights: {mars: 1}}\n",
    'RoutingConfigError: r.yaml:2: unknown cluster "mars" in rule rule-1 weights (known: east, local, west)',
  ],
  [
    "rules:\n  - {clusters: [east, west], weights: {east: -1}}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1: weight of east must be a whole number >= 0",
  ],
  [
    "rules:\n  - {clusters: [east, west], weights: {east: 1.5}}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1: weight of east must be a whole number >= 0",
  ],
  [
    "rules:\n  - {clusters: [east, west], weights: {east: x}}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1: weight of east must be a whole number >= 0",
  ],
  [
    "rules:\n  - {clusters: [east, west], strategy: weighted}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1: weighted needs a positive weight for at least one cluster",
  ],
  [
    "rules:\n  - {clusters: [east, west], strategy: weighted, weights: {east: 0}}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1: weighted needs a positive weight for at least one cluster",
  ],
  [
    "rules:\n  - {cluster: east, namespace: Bad_NS}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1: namespace must be a namespace name",
  ],
  [
    "rules:\n  - {cluster: east, namespace: 3}\n",
    "RoutingConfigError: r.yaml:2: rule rule-1: namespace must be a namespace name",
  ],
  [
    "rules:\n  - name: a\n    cluster: east\n  - name: b\n    match:\n      verbs: [get, fly]\n    cluster: east\n",
    'RoutingConfigError: r.yaml:6: rule b: unknown verb "fly" (expected one of get, list, watch, create, update, patch, delete, deletecollection)',
  ],
];

const POLICY: Array<[string, string]> = [
  [
    "a: [\n",
    "PolicyError: p.yaml:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
  ],
  [
    "",
    "PolicyError: p.yaml:1: the policy must be a mapping (apiVersion: mca.io/v1alpha1, kind: Policy)",
  ],
  [
    "- a\n",
    "PolicyError: p.yaml:1: the policy must be a mapping (apiVersion: mca.io/v1alpha1, kind: Policy)",
  ],
  [
    "colour: red\n",
    'PolicyError: p.yaml:1: unknown key "colour" (expected apiVersion, kind, mode, default, isolation, rules)',
  ],
  [
    "kind: Policy\n",
    "PolicyError: p.yaml:1: apiVersion must be mca.io/v1alpha1",
  ],
  [
    "apiVersion: [a]\nkind: Policy\n",
    "PolicyError: p.yaml:1: apiVersion must be a string",
  ],
  [
    "apiVersion: mca.io/v1\nkind: Policy\n",
    "PolicyError: p.yaml:1: apiVersion must be mca.io/v1alpha1",
  ],
  [
    "apiVersion: mca.io/v1alpha1\n",
    "PolicyError: p.yaml:1: kind must be Policy",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Other\n",
    "PolicyError: p.yaml:2: kind must be Policy",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nmode: loud\n",
    'PolicyError: p.yaml:3: mode must be one of enforce, audit (got "loud")',
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nmode: [a]\n",
    "PolicyError: p.yaml:3: mode must be a string",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\ndefault: maybe\n",
    'PolicyError: p.yaml:3: default must be one of allow, deny (got "maybe")',
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nisolation: cluster\n",
    'PolicyError: p.yaml:3: isolation must be one of namespace (got "cluster")',
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules: {a: 1}\n",
    "PolicyError: p.yaml:3: rules must be a list",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules: null\n",
    "PolicyError: p.yaml:3: rules must be a list",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nmode: null\n",
    "PolicyError: p.yaml:3: mode must be a string",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - {effect: deny, verbs: null}\n",
    "PolicyError: p.yaml:4: verbs must be a list",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - {effect: null}\n",
    "PolicyError: p.yaml:4: effect must be a string",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - x\n",
    "PolicyError: p.yaml:4: rule 1 must be a mapping",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - {effect: deny, colour: red}\n",
    'PolicyError: p.yaml:4: unknown key "colour" in rule 1 (expected name, effect, verbs, apiGroups, resources, resourceNames, namespaces, clusters, nonResourceURLs, serviceAccounts)',
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - {name: n}\n",
    "PolicyError: p.yaml:4: rule 1 needs effect: allow or deny",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - {effect: perhaps}\n",
    'PolicyError: p.yaml:4: effect must be one of allow, deny (got "perhaps")',
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - {effect: deny, name: [a]}\n",
    "PolicyError: p.yaml:4: name must be a string",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - {effect: deny, verbs: get}\n",
    "PolicyError: p.yaml:4: verbs must be a list",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - {effect: deny, verbs: [1]}\n",
    "PolicyError: p.yaml:4: verbs must be a list of strings",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - {effect: deny, serviceAccounts: [bob]}\n",
    'PolicyError: p.yaml:4: serviceAccounts entries are namespace/name (got "bob")',
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - {effect: deny, serviceAccounts: [a/b/c]}\n",
    'PolicyError: p.yaml:4: serviceAccounts entries are namespace/name (got "a/b/c")',
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - {name: n, effect: deny, nonResourceURLs: [/x], resources: [pods]}\n",
    "PolicyError: p.yaml:4: rule n: nonResourceURLs cannot be combined with resources, apiGroups or namespaces",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - {effect: deny, nonResourceURLs: [/x], namespaces: [a]}\n",
    "PolicyError: p.yaml:4: rule rule-1: nonResourceURLs cannot be combined with resources, apiGroups or namespaces",
  ],
  [
    "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - effect: deny\n  - name: two\n    effect: allow\n    serviceAccounts:\n      - a/b\n      - c\n",
    'PolicyError: p.yaml:8: serviceAccounts entries are namespace/name (got "c")',
  ],
];

const AUDIT: Array<[string, string]> = [
  [
    "a: [\n",
    "AuditPolicyError: a.yaml:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
  ],
  ["", "AuditPolicyError: a.yaml:1: an audit policy must be a mapping"],
  ["- a\n", "AuditPolicyError: a.yaml:1: an audit policy must be a mapping"],
  [
    "colour: red\n",
    'AuditPolicyError: a.yaml:1: the policy: unknown key "colour" (expected apiVersion, kind, metadata, rules, omitStages, omitManagedFields)',
  ],
  [
    "apiVersion: v1\nkind: Policy\nrules: [{level: None}]\n",
    'AuditPolicyError: a.yaml:1: expected apiVersion: audit.k8s.io/v1 and kind: Policy, got "v1" / "Policy"',
  ],
  [
    "kind: Policy\nrules: [{level: None}]\n",
    'AuditPolicyError: a.yaml:1: expected apiVersion: audit.k8s.io/v1 and kind: Policy, got "" / "Policy"',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Pod\n",
    'AuditPolicyError: a.yaml:1: expected apiVersion: audit.k8s.io/v1 and kind: Policy, got "audit.k8s.io/v1" / "Pod"',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\n",
    "AuditPolicyError: a.yaml:1: rules must be a non-empty list (kube-apiserver rejects a policy with 0 rules)",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n",
    "AuditPolicyError: a.yaml:3: rules must be a non-empty list (kube-apiserver rejects a policy with 0 rules)",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: {a: 1}\n",
    "AuditPolicyError: a.yaml:3: rules must be a non-empty list (kube-apiserver rejects a policy with 0 rules)",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: null\n",
    "AuditPolicyError: a.yaml:3: rules must be a non-empty list (kube-apiserver rejects a policy with 0 rules)",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, resources: null}\n",
    "AuditPolicyError: a.yaml:4: rule 1: resources must be a list",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, users: null, omitStages: null, omitManagedFields: null}\n",
    "AuditPolicyError: a.yaml:4: rule 1: omitManagedFields must be true or false",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, resources: [{group: null, resources: null}]}\n",
    'AuditPolicyError: a.yaml:4: rule 1: group must be "" (core) or a lower-case DNS subdomain, got null',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - x\n",
    "AuditPolicyError: a.yaml:4: rule 1 must be a mapping",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, colour: red}\n",
    'AuditPolicyError: a.yaml:4: rule 1: unknown key "colour" (expected level, users, userGroups, verbs, resources, namespaces, nonResourceURLs, omitStages, omitManagedFields)',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {users: [a]}\n",
    'AuditPolicyError: a.yaml:4: rule 1: level must be None, Metadata, Request or RequestResponse, got ""',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: Everything}\n",
    'AuditPolicyError: a.yaml:4: rule 1: level must be None, Metadata, Request or RequestResponse, got "Everything"',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: [a]}\n",
    'AuditPolicyError: a.yaml:4: rule 1: level must be None, Metadata, Request or RequestResponse, got ""',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, users: bob}\n",
    "AuditPolicyError: a.yaml:4: rule 1: users must be a list of strings",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, users: [1]}\n",
    "AuditPolicyError: a.yaml:4: rule 1: users must be a list of strings",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, verbs: [get, 2]}\n",
    "AuditPolicyError: a.yaml:4: rule 1: verbs must be a list of strings",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, resources: {a: 1}}\n",
    "AuditPolicyError: a.yaml:4: rule 1: resources must be a list",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, resources: [a]}\n",
    "AuditPolicyError: a.yaml:4: rule 1: each resources entry must be a mapping",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, resources: [{group: Apps}]}\n",
    'AuditPolicyError: a.yaml:4: rule 1: group must be "" (core) or a lower-case DNS subdomain, got "Apps"',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, resources: [{group: [a]}]}\n",
    'AuditPolicyError: a.yaml:4: rule 1: group must be "" (core) or a lower-case DNS subdomain, got null',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, resources: [{groups: a}]}\n",
    'AuditPolicyError: a.yaml:4: rule 1: resources: unknown key "groups" (expected group, resources, resourceNames)',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, resources: [{group: '', resourceNames: [x]}]}\n",
    "AuditPolicyError: a.yaml:4: rule 1: using resourceNames requires at least one resource",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, resources: [{resources: pods}]}\n",
    "AuditPolicyError: a.yaml:4: rule 1: resources.resources must be a list of strings",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, resources: [{resources: [pods], resourceNames: 3}]}\n",
    "AuditPolicyError: a.yaml:4: rule 1: resources.resourceNames must be a list of strings",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, omitStages: [Later]}\n",
    'AuditPolicyError: a.yaml:4: rule 1: omitStages: unknown stage "Later" (expected RequestReceived, ResponseStarted, ResponseComplete, Panic)',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, omitStages: Later}\n",
    "AuditPolicyError: a.yaml:4: rule 1: omitStages must be a list of strings",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, omitManagedFields: yes}\n",
    "AuditPolicyError: a.yaml:4: rule 1: omitManagedFields must be true or false",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, nonResourceURLs: [/x], resources: [{group: ''}]}\n",
    "AuditPolicyError: a.yaml:4: rule 1: rules cannot apply to both regular resources and non-resource URLs",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, nonResourceURLs: [/x], namespaces: [a]}\n",
    "AuditPolicyError: a.yaml:4: rule 1: rules cannot apply to both regular resources and non-resource URLs",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, nonResourceURLs: [x]}\n",
    'AuditPolicyError: a.yaml:4: rule 1: nonResourceURLs must start with "/" (or be "*"), got "x"',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, nonResourceURLs: [/a*/b]}\n",
    'AuditPolicyError: a.yaml:4: rule 1: "*" is allowed only at the end of a nonResourceURL, got "/a*/b"',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - {level: None, nonResourceURLs: '/x'}\n",
    "AuditPolicyError: a.yaml:4: rule 1: nonResourceURLs must be a list of strings",
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [Later]\nrules: [{level: None}]\n",
    'AuditPolicyError: a.yaml:3: omitStages: unknown stage "Later" (expected RequestReceived, ResponseStarted, ResponseComplete, Panic)',
  ],
  [
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: 1\nrules: [{level: None}]\n",
    "AuditPolicyError: a.yaml:3: omitManagedFields must be true or false",
  ],
  [
    'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n  - level: Metadata\n    resources:\n      - group: apps\n        resources: [deployments]\n      - group: ""\n        resources: [pods, 7]\n',
    "AuditPolicyError: a.yaml:10: rule 2: resources.resources must be a list of strings",
  ],
];

const clusters = new Set(["local", "east", "west"]);

Deno.test("config errors: routing messages are unchanged", () => {
  for (const [text, expected] of ROUTING) {
    const got = message(() =>
      parseRoutingConfig(text, { file: "r.yaml", clusters })
    );
    assert.equal(got, expected, JSON.stringify(text));
  }
});

Deno.test("config errors: call policy messages are unchanged", () => {
  for (const [text, expected] of POLICY) {
    const got = message(() => parsePolicy(text, "p.yaml"));
    assert.equal(got, expected, JSON.stringify(text));
  }
});

Deno.test("config errors: audit policy messages are unchanged", () => {
  for (const [text, expected] of AUDIT) {
    const got = message(() => parseAuditPolicy(text, { file: "a.yaml" }));
    assert.equal(got, expected, JSON.stringify(text));
  }
});
