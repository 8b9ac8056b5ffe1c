/**
 * The call policy file (`--policy FILE`, a mounted ConfigMap), validated.
 *
 * ```yaml
 * apiVersion: mca.io/v1alpha1
 * kind: Policy
 * mode: enforce          # enforce | audit
 * default: allow         # allow | deny
 * isolation: namespace   # optional
 * rules:
 *   - name: no-secrets
 *     effect: deny
 *     verbs: [get, list, watch]
 *     apiGroups: [""]
 *     resources: [secrets]
 * ```
 *
 * Every error is `file:line: what`, like the routing file's, so a rejected
 * reload names the line to fix.
 *
 * @module
 */

import { isMap, isScalar, isSeq } from "yaml";
import type { YAMLMap } from "yaml";
import { checkKeys, readYamlFile, type YamlFile } from "../config/yaml_file.ts";
import { glob } from "../config/glob.ts";

export { glob } from "../config/glob.ts";

/** One validated rule; absent lists match everything. */
export interface PolicyRule {
  name: string;
  line: number;
  effect: "allow" | "deny";
  verbs?: string[];
  apiGroups?: string[];
  /** `resource`, `resource/subresource`, `*`, `*\/scale`. */
  resources?: string[];
  resourceNames?: string[];
  /** Exact or glob; `""` = cluster-scoped. */
  namespaces?: RegExp[];
  clusters?: RegExp[];
  /** Exact, or a prefix ending in `*`. */
  nonResourceURLs?: string[];
  /** `namespace/name` of service accounts (globs allowed). */
  serviceAccounts?: RegExp[];
}

/** A validated policy. */
export interface Policy {
  mode: "enforce" | "audit";
  default: "allow" | "deny";
  isolation?: "namespace";
  rules: PolicyRule[];
}

/** Raised for an invalid policy; `message` is `file:line: what`. */
export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PolicyError";
  }
}

const TOP_KEYS = [
  "apiVersion",
  "kind",
  "mode",
  "default",
  "isolation",
  "rules",
];
const LIST_KEYS = [
  "verbs",
  "apiGroups",
  "resources",
  "resourceNames",
  "namespaces",
  "clusters",
  "nonResourceURLs",
  "serviceAccounts",
];
const RULE_KEYS = ["name", "effect", ...LIST_KEYS];

/** Parses and validates a policy file's text. */
export function parsePolicy(text: string, file: string): Policy {
  const ctx: YamlFile = readYamlFile(text, {
    file,
    error: (message) => new PolicyError(message),
  });
  const root = ctx.root;
  if (!isMap(root)) {
    ctx.fail(
      root,
      "the policy must be a mapping (apiVersion: mca.io/v1alpha1, kind: Policy)",
    );
  }
  checkKeys(root, TOP_KEYS, {
    fail: ctx.fail,
    message: (key) =>
      `unknown key ${JSON.stringify(key)} (expected ${TOP_KEYS.join(", ")})`,
  });
  checkHeader(root, ctx);
  return {
    mode: oneOf(root, "mode", {
      allowed: ["enforce", "audit"] as const,
      fallback: "enforce",
      ctx,
    })!,
    default: oneOf(root, "default", {
      allowed: ["allow", "deny"] as const,
      fallback: "allow",
      ctx,
    })!,
    isolation: oneOf(root, "isolation", {
      allowed: ["namespace"] as const,
      ctx,
    }),
    rules: parseRules(root.get("rules", true), ctx),
  };
}

/** `apiVersion: mca.io/v1alpha1` and `kind: Policy`, in that order. */
function checkHeader(root: YAMLMap, ctx: YamlFile): void {
  if (scalar(root, "apiVersion", ctx) !== "mca.io/v1alpha1") {
    ctx.fail(
      root.get("apiVersion", true) ?? root,
      "apiVersion must be mca.io/v1alpha1",
    );
  }
  if (scalar(root, "kind", ctx) !== "Policy") {
    ctx.fail(root.get("kind", true) ?? root, "kind must be Policy");
  }
}

function parseRules(rules: unknown, ctx: YamlFile): PolicyRule[] {
  if (rules === undefined || rules === null) return [];
  if (!isSeq(rules)) ctx.fail(rules, "rules must be a list");
  return rules.items.map((item, i) => {
    if (!isMap(item)) ctx.fail(item, `rule ${i + 1} must be a mapping`);
    return parseRule(item, i, ctx);
  });
}

function parseRule(map: YAMLMap, index: number, ctx: YamlFile): PolicyRule {
  checkKeys(map, RULE_KEYS, {
    fail: ctx.fail,
    message: (key) =>
      `unknown key ${JSON.stringify(key)} in rule ${
        index + 1
      } (expected name, effect, ${LIST_KEYS.join(", ")})`,
  });
  const effect = oneOf(map, "effect", {
    allowed: ["allow", "deny"] as const,
    ctx,
  });
  if (effect === undefined) {
    ctx.fail(map, `rule ${index + 1} needs effect: allow or deny`);
  }
  const rule: PolicyRule = {
    name: scalar(map, "name", ctx) ?? `rule-${index + 1}`,
    line: ctx.line(map),
    effect,
  };
  const list = (key: string) => optionalStrings(map, key, ctx);
  rule.verbs = list("verbs");
  rule.apiGroups = list("apiGroups");
  rule.resources = list("resources");
  rule.resourceNames = list("resourceNames");
  rule.nonResourceURLs = list("nonResourceURLs");
  rule.namespaces = list("namespaces")?.map(glob);
  rule.clusters = list("clusters")?.map(glob);
  rule.serviceAccounts = serviceAccounts(map, ctx);
  if (
    rule.nonResourceURLs &&
    (rule.resources || rule.apiGroups || rule.namespaces)
  ) {
    ctx.fail(
      map,
      `rule ${rule.name}: nonResourceURLs cannot be combined with resources, apiGroups or namespaces`,
    );
  }
  return rule;
}

/** `serviceAccounts:` entries are `namespace/name` globs. */
function serviceAccounts(map: YAMLMap, ctx: YamlFile): RegExp[] | undefined {
  const accounts = optionalStrings(map, "serviceAccounts", ctx);
  for (const sa of accounts ?? []) {
    if (!/^[^/]+\/[^/]+$/.test(sa)) {
      ctx.fail(
        map.get("serviceAccounts", true),
        `serviceAccounts entries are namespace/name (got ${
          JSON.stringify(sa)
        })`,
      );
    }
  }
  return accounts?.map(glob);
}

function scalar(map: YAMLMap, key: string, ctx: YamlFile): string | undefined {
  const node = map.get(key, true);
  if (node === undefined || node === null) return undefined;
  if (!isScalar(node) || typeof node.value !== "string") {
    ctx.fail(node, `${key} must be a string`);
  }
  return node.value;
}

function oneOf<T extends string>(
  map: YAMLMap,
  key: string,
  args: { allowed: readonly T[]; fallback?: T; ctx: YamlFile },
): T | undefined {
  const value = scalar(map, key, args.ctx);
  if (value === undefined) return args.fallback;
  if (!(args.allowed as readonly string[]).includes(value)) {
    args.ctx.fail(
      map.get(key, true),
      `${key} must be one of ${args.allowed.join(", ")} (got ${
        JSON.stringify(value)
      })`,
    );
  }
  return value as T;
}

/** The list at `key`, or undefined when absent (an absent list matches all). */
function optionalStrings(
  map: YAMLMap,
  key: string,
  ctx: YamlFile,
): string[] | undefined {
  const node = map.get(key, true);
  if (node === undefined || node === null) return undefined;
  if (!isSeq(node)) ctx.fail(node, `${key} must be a list`);
  return node.items.map((item) => {
    if (!isScalar(item) || typeof item.value !== "string") {
      ctx.fail(item, `${key} must be a list of strings`);
    }
    return item.value;
  });
}
