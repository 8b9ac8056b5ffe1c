/**
 * kube-apiserver's audit policy (`audit.k8s.io/v1` `Policy`), parsed and
 * evaluated with the same semantics as k8s.io/apiserver's
 * `pkg/audit/policy/checker.go`, so a platform team can reuse the policy
 * file they already give their API servers: rules are tried in order, the
 * first match sets the level, no match means `None`.
 *
 * Stricter than kube-apiserver in one way: unknown keys are errors (with the
 * file and line), because a misspelt `namespace:` would silently widen a rule.
 *
 * @module
 */

import { isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Node, YAMLMap } from "yaml";

/** How much of a call is recorded. */
export type AuditLevel = "None" | "Metadata" | "Request" | "RequestResponse";
/** The audit stages; `Panic` is accepted in files but MCA never emits it. */
export type AuditStage =
  | "RequestReceived"
  | "ResponseStarted"
  | "ResponseComplete"
  | "Panic";

/** One `resources` entry of a rule. */
export interface GroupResources {
  group: string;
  resources: string[];
  resourceNames: string[];
}

/** One rule; empty lists match everything, as in kube-apiserver. */
export interface AuditRule {
  level: AuditLevel;
  users: string[];
  userGroups: string[];
  verbs: string[];
  resources: GroupResources[];
  namespaces: string[];
  nonResourceURLs: string[];
  omitStages: AuditStage[];
  omitManagedFields?: boolean;
  line: number;
}

/** A parsed policy. */
export interface AuditPolicy {
  rules: AuditRule[];
  omitStages: AuditStage[];
  omitManagedFields: boolean;
}

/** What the policy says about one call. */
export interface AuditConfig {
  level: AuditLevel;
  omitStages: ReadonlySet<AuditStage>;
  omitManagedFields: boolean;
}

/** The attributes a rule is matched against (authorizer.Attributes). */
export interface AuditAttributes {
  user?: { username: string; groups: readonly string[] };
  verb: string;
  isResourceRequest: boolean;
  path: string;
  namespace: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  name: string;
}

/** Raised for an invalid policy; `message` is `file:line: what`. */
export class AuditPolicyError extends Error {
  override name = "AuditPolicyError";
}

const LEVELS = new Set(["None", "Metadata", "Request", "RequestResponse"]);
const STAGES = new Set([
  "RequestReceived",
  "ResponseStarted",
  "ResponseComplete",
  "Panic",
]);
const POLICY_KEYS = new Set([
  "apiVersion",
  "kind",
  "metadata",
  "rules",
  "omitStages",
  "omitManagedFields",
]);
const RULE_KEYS = new Set([
  "level",
  "users",
  "userGroups",
  "verbs",
  "resources",
  "namespaces",
  "nonResourceURLs",
  "omitStages",
  "omitManagedFields",
]);
const GR_KEYS = new Set(["group", "resources", "resourceNames"]);
const DNS_SUBDOMAIN =
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

type Fail = (node: unknown, message: string) => never;

/** Parses and validates a policy file; throws {@linkcode AuditPolicyError}. */
export function parseAuditPolicy(
  text: string,
  options: { file: string },
): AuditPolicy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const fail: Fail = (node, message) => {
    const offset = (node as Node | undefined)?.range?.[0];
    const line = offset === undefined ? 1 : lines.linePos(offset).line;
    throw new AuditPolicyError(`${options.file}:${line}: ${message}`);
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new AuditPolicyError(
      `${options.file}:${e.linePos?.[0]?.line ?? 1}: invalid YAML: ${
        e.message.split("\n")[0]
      }`,
    );
  }
  const root = doc.contents;
  if (!isMap(root)) fail(root, "an audit policy must be a mapping");
  checkKeys(root, POLICY_KEYS, "the policy", fail);
  const apiVersion = scalar(root.get("apiVersion", true));
  const kind = scalar(root.get("kind", true));
  if (apiVersion !== "audit.k8s.io/v1" || kind !== "Policy") {
    fail(
      root.get("apiVersion", true) ?? root,
      `expected apiVersion: audit.k8s.io/v1 and kind: Policy, got ${
        JSON.stringify(apiVersion ?? "")
      } / ${JSON.stringify(kind ?? "")}`,
    );
  }
  const rulesNode = root.get("rules", true);
  if (!isSeq(rulesNode) || rulesNode.items.length === 0) {
    fail(
      rulesNode ?? root,
      "rules must be a non-empty list (kube-apiserver rejects a policy with 0 rules)",
    );
  }
  return {
    rules: rulesNode.items.map((item, i) =>
      parseRule(item, i + 1, { fail, lines })
    ),
    omitStages: stages(root.get("omitStages", true), "omitStages", fail),
    omitManagedFields:
      bool(root.get("omitManagedFields", true), "omitManagedFields", fail) ??
        false,
  };
}

function parseRule(
  item: unknown,
  n: number,
  ctx: { fail: Fail; lines: LineCounter },
): AuditRule {
  const fail: Fail = ctx.fail;
  if (!isMap(item)) fail(item, `rule ${n} must be a mapping`);
  const node = item as YAMLMap;
  checkKeys(node, RULE_KEYS, `rule ${n}`, fail);
  const levelNode = node.get("level", true);
  const level = scalar(levelNode);
  if (level === undefined || !LEVELS.has(level)) {
    fail(
      levelNode ?? node,
      `rule ${n}: level must be None, Metadata, Request or RequestResponse, got ${
        JSON.stringify(level ?? "")
      }`,
    );
  }
  const list = (key: string) =>
    strings(node.get(key, true), `rule ${n}: ${key}`, fail);
  const rule: AuditRule = {
    level: level as AuditLevel,
    users: list("users"),
    userGroups: list("userGroups"),
    verbs: list("verbs"),
    namespaces: list("namespaces"),
    nonResourceURLs: list("nonResourceURLs"),
    resources: groupResources(node, n, fail),
    omitStages: stages(
      node.get("omitStages", true),
      `rule ${n}: omitStages`,
      fail,
    ),
    omitManagedFields: bool(
      node.get("omitManagedFields", true),
      `rule ${n}: omitManagedFields`,
      fail,
    ),
    line: ctx.lines.linePos(node.range?.[0] ?? 0).line,
  };
  if (
    rule.nonResourceURLs.length > 0 &&
    (rule.resources.length > 0 || rule.namespaces.length > 0)
  ) {
    fail(
      node,
      `rule ${n}: rules cannot apply to both regular resources and non-resource URLs`,
    );
  }
  const urls = node.get("nonResourceURLs", true);
  rule.nonResourceURLs.forEach((url, i) => {
    const at = isSeq(urls) ? urls.items[i] : node;
    if (!url.startsWith("/") && url !== "*") {
      fail(
        at,
        `rule ${n}: nonResourceURLs must start with "/" (or be "*"), got ${
          JSON.stringify(url)
        }`,
      );
    }
    if (url.slice(0, -1).includes("*")) {
      fail(
        at,
        `rule ${n}: "*" is allowed only at the end of a nonResourceURL, got ${
          JSON.stringify(url)
        }`,
      );
    }
  });
  return rule;
}

function groupResources(map: YAMLMap, n: number, fail: Fail): GroupResources[] {
  const node = map.get("resources", true);
  if (node === undefined || node === null) return [];
  if (!isSeq(node)) fail(node, `rule ${n}: resources must be a list`);
  return node.items.map((item) => {
    if (!isMap(item)) {
      fail(item, `rule ${n}: each resources entry must be a mapping`);
    }
    checkKeys(item, GR_KEYS, `rule ${n}: resources`, fail);
    const groupNode = item.get("group", true);
    const group = groupNode === undefined || groupNode === null
      ? ""
      : scalar(groupNode);
    if (group === undefined || (group !== "" && !DNS_SUBDOMAIN.test(group))) {
      fail(
        groupNode,
        `rule ${n}: group must be "" (core) or a lower-case DNS subdomain, got ${
          JSON.stringify(group ?? null)
        }`,
      );
    }
    const gr: GroupResources = {
      group,
      resources: strings(
        item.get("resources", true),
        `rule ${n}: resources.resources`,
        fail,
      ),
      resourceNames: strings(
        item.get("resourceNames", true),
        `rule ${n}: resources.resourceNames`,
        fail,
      ),
    };
    if (gr.resourceNames.length > 0 && gr.resources.length === 0) {
      fail(
        item,
        `rule ${n}: using resourceNames requires at least one resource`,
      );
    }
    return gr;
  });
}

function checkKeys(
  map: YAMLMap,
  allowed: Set<string>,
  what: string,
  fail: Fail,
): void {
  for (const pair of map.items) {
    const key = String(isScalar(pair.key) ? pair.key.value : "");
    if (!allowed.has(key)) {
      fail(
        pair.key,
        `${what}: unknown key ${JSON.stringify(key)} (expected ${
          [...allowed].join(", ")
        })`,
      );
    }
  }
}

function scalar(node: unknown): string | undefined {
  return isScalar(node) && typeof node.value === "string"
    ? node.value
    : undefined;
}

function bool(node: unknown, what: string, fail: Fail): boolean | undefined {
  if (node === undefined || node === null) return undefined;
  if (!isScalar(node) || typeof node.value !== "boolean") {
    fail(node, `${what} must be true or false`);
  }
  return node.value;
}

function strings(node: unknown, what: string, fail: Fail): string[] {
  if (node === undefined || node === null) return [];
  if (isScalar(node) && node.value === null) return [];
  if (!isSeq(node)) fail(node, `${what} must be a list of strings`);
  return node.items.map((item) => {
    if (!isScalar(item) || typeof item.value !== "string") {
      fail(item, `${what} must be a list of strings`);
    }
    return item.value;
  });
}

function stages(node: unknown, what: string, fail: Fail): AuditStage[] {
  const list = strings(node, what, fail);
  list.forEach((s, i) => {
    if (!STAGES.has(s)) {
      fail(
        isSeq(node) ? node.items[i] : node,
        `${what}: unknown stage ${JSON.stringify(s)} (expected ${
          [...STAGES].join(", ")
        })`,
      );
    }
  });
  return list as AuditStage[];
}

/** The first matching rule decides; no match is level `None` (checker.go). */
export function evaluateAuditPolicy(
  policy: AuditPolicy,
  attrs: AuditAttributes,
): AuditConfig {
  for (const rule of policy.rules) {
    if (ruleMatches(rule, attrs)) {
      return {
        level: rule.level,
        omitStages: new Set([...policy.omitStages, ...rule.omitStages]),
        omitManagedFields: rule.omitManagedFields ?? policy.omitManagedFields,
      };
    }
  }
  return {
    level: "None",
    omitStages: new Set(policy.omitStages),
    omitManagedFields: policy.omitManagedFields,
  };
}

function ruleMatches(rule: AuditRule, attrs: AuditAttributes): boolean {
  const user = attrs.user;
  if (rule.users.length > 0) {
    if (!user || !rule.users.includes(user.username)) return false;
  }
  if (rule.userGroups.length > 0) {
    if (!user || !user.groups.some((g) => rule.userGroups.includes(g))) {
      return false;
    }
  }
  if (rule.verbs.length > 0 && !rule.verbs.includes(attrs.verb)) return false;
  if (rule.namespaces.length > 0 || rule.resources.length > 0) {
    return resourceMatches(rule, attrs);
  }
  if (rule.nonResourceURLs.length > 0) {
    if (attrs.isResourceRequest) return false;
    return rule.nonResourceURLs.some((spec) => pathMatches(attrs.path, spec));
  }
  return true;
}

function pathMatches(path: string, spec: string): boolean {
  if (spec === "*" || spec === path) return true;
  // Go's strings.TrimRight(spec, "*"): every trailing star goes.
  return spec.endsWith("*") && path.startsWith(spec.replace(/\*+$/, ""));
}

function resourceMatches(rule: AuditRule, attrs: AuditAttributes): boolean {
  if (!attrs.isResourceRequest) return false;
  // Cluster-scoped resources have the namespace "".
  if (
    rule.namespaces.length > 0 && !rule.namespaces.includes(attrs.namespace)
  ) {
    return false;
  }
  if (rule.resources.length === 0) return true;
  const { resource, subresource, name } = attrs;
  const combined = subresource ? `${resource}/${subresource}` : resource;
  for (const gr of rule.resources) {
    if (gr.group !== attrs.apiGroup) continue;
    if (gr.resources.length === 0) return true;
    if (gr.resourceNames.length > 0 && !gr.resourceNames.includes(name)) {
      continue;
    }
    for (const res of gr.resources) {
      if (res === combined || res === "*") return true;
      if (subresource && res.startsWith("*/") && res.slice(2) === subresource) {
        return true;
      }
      if (res.endsWith("/*") && res.slice(0, -2) === resource) return true;
    }
  }
  return false;
}
