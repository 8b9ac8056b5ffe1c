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

import { isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Node, YAMLMap } from "yaml";

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

/** Turns a glob (`*`, `?`) into an anchored regular expression. */
export function glob(text: string): RegExp {
  const body = text.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

interface Ctx {
  fail(node: unknown, message: string): never;
}

function scalar(map: YAMLMap, key: string, ctx: Ctx): string | undefined {
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
  args: { allowed: readonly T[]; fallback?: T; ctx: Ctx },
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

function strings(node: unknown, what: string, ctx: Ctx): string[] {
  if (!isSeq(node)) ctx.fail(node, `${what} must be a list`);
  return node.items.map((item) => {
    if (!isScalar(item) || typeof item.value !== "string") {
      ctx.fail(item, `${what} must be a list of strings`);
    }
    return item.value;
  });
}

function parseRule(
  map: YAMLMap,
  index: number,
  ctx: Ctx & { line(n: unknown): number },
): PolicyRule {
  for (const pair of map.items) {
    const key = String(isScalar(pair.key) ? pair.key.value : "");
    if (key !== "name" && key !== "effect" && !LIST_KEYS.includes(key)) {
      ctx.fail(
        pair.key,
        `unknown key ${JSON.stringify(key)} in rule ${
          index + 1
        } (expected name, effect, ${LIST_KEYS.join(", ")})`,
      );
    }
  }
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
  const list = (key: string) => {
    const node = map.get(key, true);
    return node === undefined || node === null
      ? undefined
      : strings(node, key, ctx);
  };
  rule.verbs = list("verbs");
  rule.apiGroups = list("apiGroups");
  rule.resources = list("resources");
  rule.resourceNames = list("resourceNames");
  rule.nonResourceURLs = list("nonResourceURLs");
  rule.namespaces = list("namespaces")?.map(glob);
  rule.clusters = list("clusters")?.map(glob);
  const accounts = list("serviceAccounts");
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
  rule.serviceAccounts = accounts?.map(glob);
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

/** Parses and validates a policy file's text. */
export function parsePolicy(text: string, file: string): Policy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const line = (node: unknown) => {
    const offset = (node as Node | undefined)?.range?.[0];
    return offset === undefined ? 1 : lines.linePos(offset).line;
  };
  const ctx: Ctx & { line(node: unknown): number } = {
    fail(node: unknown, message: string): never {
      throw new PolicyError(`${file}:${line(node)}: ${message}`);
    },
    line,
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new PolicyError(
      `${file}:${e.linePos?.[0]?.line ?? 1}: invalid YAML: ${
        e.message.split("\n")[0]
      }`,
    );
  }
  const root = doc.contents;
  if (!isMap(root)) {
    ctx.fail(
      root,
      "the policy must be a mapping (apiVersion: mca.io/v1alpha1, kind: Policy)",
    );
  }
  for (const pair of root.items) {
    const key = String(isScalar(pair.key) ? pair.key.value : "");
    if (!TOP_KEYS.includes(key)) {
      ctx.fail(
        pair.key,
        `unknown key ${JSON.stringify(key)} (expected ${TOP_KEYS.join(", ")})`,
      );
    }
  }
  if (scalar(root, "apiVersion", ctx) !== "mca.io/v1alpha1") {
    ctx.fail(
      root.get("apiVersion", true) ?? root,
      "apiVersion must be mca.io/v1alpha1",
    );
  }
  if (scalar(root, "kind", ctx) !== "Policy") {
    ctx.fail(root.get("kind", true) ?? root, "kind must be Policy");
  }
  const policy: Policy = {
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
    rules: [],
  };
  const rules = root.get("rules", true);
  if (rules !== undefined && rules !== null) {
    if (!isSeq(rules)) ctx.fail(rules, "rules must be a list");
    rules.items.forEach((item, i) => {
      if (!isMap(item)) ctx.fail(item, `rule ${i + 1} must be a mapping`);
      policy.rules.push(parseRule(item, i, ctx));
    });
  }
  return policy;
}
