/**
 * kube-apiserver's audit policy (`audit.k8s.io/v1` `Policy`), parsed and
 * evaluated with the same semantics as k8s.io/apiserver's
 * `pkg/audit/policy/checker.go`, so a platform team can reuse the policy
 * file they already give their API servers: rules are tried in order, the
 * first match sets the level, no match means `None`.
 *
 * Stricter than kube-apiserver in one way: unknown keys are errors (with the
 * file and line), because a misspelt `namespace:` would silently widen a rule.
 * One rule is read by `policy_rule.ts`; this module reads the file around the
 * rules and evaluates them.
 *
 * @module
 */

import { isMap, isSeq } from "yaml";
import { readYamlFile, type YamlFile } from "../config/yaml_file.ts";
import {
  type AuditLevel,
  type AuditRule,
  type AuditStage,
  bool,
  knownKeys,
  parseRule,
  scalar,
  stages,
} from "./policy_rule.ts";

export type {
  AuditLevel,
  AuditRule,
  AuditStage,
  GroupResources,
} from "./policy_rule.ts";

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

const POLICY_KEYS = new Set([
  "apiVersion",
  "kind",
  "metadata",
  "rules",
  "omitStages",
  "omitManagedFields",
]);

/** Parses and validates a policy file; throws {@linkcode AuditPolicyError}. */
export function parseAuditPolicy(
  text: string,
  options: { file: string },
): AuditPolicy {
  const file: YamlFile = readYamlFile(text, {
    file: options.file,
    error: (message) => new AuditPolicyError(message),
  });
  const { root, fail } = file;
  if (!isMap(root)) file.fail(root, "an audit policy must be a mapping");
  knownKeys(root, POLICY_KEYS, { what: "the policy", fail });
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
    file.fail(
      rulesNode ?? root,
      "rules must be a non-empty list (kube-apiserver rejects a policy with 0 rules)",
    );
  }
  return {
    rules: rulesNode.items.map((item, i) => parseRule(item, i + 1, file)),
    omitStages: stages(root.get("omitStages", true), "omitStages", fail),
    omitManagedFields:
      bool(root.get("omitManagedFields", true), "omitManagedFields", fail) ??
        false,
  };
}

/** The first matching rule decides; no match is level `None` (checker.go). */
export function evaluateAuditPolicy(
  policy: AuditPolicy,
  attrs: AuditAttributes,
): AuditConfig {
  const configs = configsOf(policy);
  for (let i = 0; i < policy.rules.length; i++) {
    if (ruleMatches(policy.rules[i], attrs)) return configs.rules[i];
  }
  return configs.none;
}

/**
 * Each rule's {@linkcode AuditConfig}, made once per policy: the config is
 * the same for every call a rule matches, and building its set per call was
 * a tenth of what an audited call allocated.
 */
const configCache = new WeakMap<
  AuditPolicy,
  { rules: AuditConfig[]; none: AuditConfig }
>();

function configsOf(
  policy: AuditPolicy,
): { rules: AuditConfig[]; none: AuditConfig } {
  let configs = configCache.get(policy);
  if (configs === undefined) {
    configs = {
      rules: policy.rules.map((rule) => ({
        level: rule.level,
        omitStages: new Set([...policy.omitStages, ...rule.omitStages]),
        omitManagedFields: rule.omitManagedFields ?? policy.omitManagedFields,
      })),
      none: {
        level: "None",
        omitStages: new Set(policy.omitStages),
        omitManagedFields: policy.omitManagedFields,
      },
    };
    configCache.set(policy, configs);
  }
  return configs;
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
