/**
 * One rule of a kube-apiserver audit policy, validated, and the field readers
 * the policy's top level shares with it. `policy.ts` reads the file as a
 * whole and evaluates it; a rule's checks are here so they read top to bottom
 * in the order their errors are reported.
 *
 * @module
 */

import { isMap, isScalar, isSeq } from "yaml";
import type { YAMLMap } from "yaml";
import { checkKeys, type Fail } from "../config/yaml_file.ts";

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

/** What a rule needs from the file around it. */
export interface RuleContext {
  fail: Fail;
  line(node: unknown): number;
}

const LEVELS = new Set(["None", "Metadata", "Request", "RequestResponse"]);
const STAGES = new Set([
  "RequestReceived",
  "ResponseStarted",
  "ResponseComplete",
  "Panic",
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

/** Validates rule number `n` (1-based); the first error found is thrown. */
export function parseRule(
  item: unknown,
  n: number,
  ctx: RuleContext,
): AuditRule {
  const fail: Fail = ctx.fail;
  if (!isMap(item)) fail(item, `rule ${n} must be a mapping`);
  const node = item as YAMLMap;
  knownKeys(node, RULE_KEYS, { what: `rule ${n}`, fail });
  const list = (key: string) =>
    strings(node.get(key, true), `rule ${n}: ${key}`, fail);
  const rule: AuditRule = {
    level: ruleLevel(node, n, fail),
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
    line: ctx.line(node),
  };
  checkNonResourceURLs(node, { rule, n, fail });
  return rule;
}

function ruleLevel(node: YAMLMap, n: number, fail: Fail): AuditLevel {
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
  return level as AuditLevel;
}

/** Not both resources and URLs; each URL `/…` or `*`, a `*` only last. */
function checkNonResourceURLs(
  node: YAMLMap,
  options: { rule: AuditRule; n: number; fail: Fail },
): void {
  const { rule, n, fail } = options;
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
}

function groupResources(map: YAMLMap, n: number, fail: Fail): GroupResources[] {
  const node = map.get("resources", true);
  if (node === undefined || node === null) return [];
  if (!isSeq(node)) fail(node, `rule ${n}: resources must be a list`);
  return node.items.map((item) => {
    if (!isMap(item)) {
      fail(item, `rule ${n}: each resources entry must be a mapping`);
    }
    knownKeys(item, GR_KEYS, { what: `rule ${n}: resources`, fail });
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

/**
 * Fails at a key kube-apiserver would ignore: a misspelt `namespace:` would
 * silently widen a rule. `what` names the mapping in the error.
 */
export function knownKeys(
  map: YAMLMap,
  allowed: Set<string>,
  options: { what: string; fail: Fail },
): void {
  checkKeys(map, allowed, {
    fail: options.fail,
    message: (key) =>
      `${options.what}: unknown key ${JSON.stringify(key)} (expected ${
        [...allowed].join(", ")
      })`,
  });
}

/** A string scalar's value; undefined for anything else. */
export function scalar(node: unknown): string | undefined {
  return isScalar(node) && typeof node.value === "string"
    ? node.value
    : undefined;
}

/** An optional boolean (undefined when absent). */
export function bool(
  node: unknown,
  what: string,
  fail: Fail,
): boolean | undefined {
  if (node === undefined || node === null) return undefined;
  if (!isScalar(node) || typeof node.value !== "boolean") {
    fail(node, `${what} must be true or false`);
  }
  return node.value;
}

/** An optional list of strings; absent or null is empty (match all). */
export function strings(node: unknown, what: string, fail: Fail): string[] {
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

/** An optional list of audit stage names. */
export function stages(node: unknown, what: string, fail: Fail): AuditStage[] {
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
