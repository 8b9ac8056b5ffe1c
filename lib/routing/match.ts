/**
 * The `match:` block of a routing rule, validated: which namespaces,
 * resources, verbs and labels a call must have for the rule to apply.
 * Kept apart from `rule.ts` (clusters and spreading) because each list has
 * its own syntax and error, and `router.ts` reads only what is built here.
 *
 * @module
 */

import { isMap, isScalar, isSeq } from "yaml";
import type { Node } from "yaml";
import { parseSelector, type Selector } from "../kube/label_selector.ts";
import { checkKeys, type Fail } from "../config/yaml_file.ts";
import { glob } from "../config/glob.ts";

/** `resource[.group][/subresource]`, each part possibly `*`. */
export interface ResourcePattern {
  resource: string;
  group: string;
  subresource?: string;
}

/** What `match:` sets; an absent list matches every call. */
export interface Match {
  namespaces?: RegExp[];
  resources?: ResourcePattern[];
  /** Undefined when the list holds `*`. */
  verbs?: Set<string>;
  labels?: Selector;
}

/** The rule being read: its name goes into every error. */
export interface MatchScope {
  fail: Fail;
  name: string;
}

const VERBS = new Set([
  "get",
  "list",
  "watch",
  "create",
  "update",
  "patch",
  "delete",
  "deletecollection",
]);
const MATCH_KEYS = new Set(["namespaces", "resources", "verbs", "labels"]);

/** Validates `match:`; only the keys it gives are set on the result. */
export function parseMatch(match: unknown, scope: MatchScope): Match {
  const name = scope.name;
  if (!isMap(match)) scope.fail(match, `rule ${name}: match must be a mapping`);
  checkKeys(match, MATCH_KEYS, {
    fail: scope.fail,
    message: (key) => `rule ${name}: unknown match key ${JSON.stringify(key)}`,
  });
  const fields: Match = {};
  const namespaces = match.get("namespaces", true);
  if (namespaces !== undefined) {
    fields.namespaces = namespaceGlobs(namespaces, scope);
  }
  const resources = match.get("resources", true);
  if (resources !== undefined) {
    fields.resources = resourcePatterns(resources, scope);
  }
  const verbs = match.get("verbs", true);
  if (verbs !== undefined) fields.verbs = verbSet(verbs, scope);
  const labels = match.get("labels", true);
  if (labels !== undefined) fields.labels = labelSelector(labels, scope);
  return fields;
}

/** A list of non-empty strings, each with its node (for the error line). */
export function stringList(
  node: unknown,
  what: string,
  scope: { fail: Fail },
): Array<{ value: string; node: Node }> {
  if (!isSeq(node)) scope.fail(node, `${what} must be a list`);
  return node.items.map((item) => {
    if (
      !isScalar(item) || typeof item.value !== "string" || item.value === ""
    ) {
      scope.fail(item, `${what} must be a list of non-empty strings`);
    }
    return { value: item.value, node: item };
  });
}

function namespaceGlobs(node: unknown, scope: MatchScope): RegExp[] {
  return stringList(node, "match.namespaces", scope).map(({ value, node }) => {
    if (!/^[a-z0-9*?]([-a-z0-9*?]*)$/.test(value)) {
      scope.fail(
        node,
        `rule ${scope.name}: bad namespace glob ${
          JSON.stringify(value)
        } (use letters, digits, -, * and ?)`,
      );
    }
    return glob(value);
  });
}

function resourcePatterns(node: unknown, scope: MatchScope): ResourcePattern[] {
  return stringList(node, "match.resources", scope).map(({ value, node }) => {
    const pattern = parseResource(value);
    if (!pattern) {
      scope.fail(
        node,
        `rule ${scope.name}: bad resource ${
          JSON.stringify(value)
        } (expected resource[.group][/subresource], e.g. deployments.apps)`,
      );
    }
    return pattern;
  });
}

function parseResource(text: string): ResourcePattern | undefined {
  const [main, subresource, extra] = text.split("/");
  if (extra !== undefined || main === "") return undefined;
  const dot = main.indexOf(".");
  const resource = dot < 0 ? main : main.slice(0, dot);
  const group = dot < 0 ? "" : main.slice(dot + 1);
  const part = /^(\*|[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/;
  if (!part.test(resource) || (group !== "" && !part.test(group))) {
    return undefined;
  }
  if (subresource !== undefined && !part.test(subresource)) return undefined;
  return {
    resource,
    group: resource === "*" && dot < 0 ? "*" : group,
    subresource,
  };
}

/** The verbs; `*` among them means every verb (undefined). */
function verbSet(node: unknown, scope: MatchScope): Set<string> | undefined {
  const verbs = new Set(
    stringList(node, "match.verbs", scope).map(({ value, node }) => {
      if (!VERBS.has(value) && value !== "*") {
        scope.fail(
          node,
          `rule ${scope.name}: unknown verb ${
            JSON.stringify(value)
          } (expected one of ${[...VERBS].join(", ")})`,
        );
      }
      return value;
    }),
  );
  return verbs.has("*") ? undefined : verbs;
}

function labelSelector(labels: unknown, scope: MatchScope): Selector {
  if (!isScalar(labels) || typeof labels.value !== "string") {
    scope.fail(
      labels,
      `rule ${scope.name}: match.labels must be a selector string such as "tier=frontend"`,
    );
  }
  try {
    return parseSelector(labels.value);
  } catch (error) {
    scope.fail(
      labels,
      `rule ${scope.name}: bad label selector: ${(error as Error).message}`,
    );
  }
}
