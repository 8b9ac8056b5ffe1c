/**
 * Phase 2 routing rules: which cluster(s) a call goes to.
 *
 * The configuration is a YAML file (a mounted ConfigMap). It is validated as
 * a whole before use, with errors that name the file and line, so that a bad
 * edit is rejected and the previous configuration stays in force. Matching
 * a call against the rules is `router.ts`'s job.
 *
 * ```yaml
 * discovery: local            # who answers /api, /apis, /openapi, /version
 * default: local              # calls no rule matches
 * rules:
 *   - name: team-b-east
 *     match:
 *       namespaces: [team-b, "batch-*"]
 *       resources: [configmaps, "deployments.apps", "*.batch", "pods/log"]
 *       verbs: [get, list, watch, create]
 *       labels: "tier=frontend"
 *     cluster: east           # or: clusters: [east, west] + strategy
 *     strategy: first-healthy # first-healthy | round-robin | weighted
 *     weights: {east: 3, west: 1}
 *     namespace: prod-b       # the app's namespace is prod-b over there
 * ```
 *
 * @module
 */

import { isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Node, YAMLMap } from "yaml";
import { parseSelector, type Selector } from "../kube/label_selector.ts";

/** How a rule spreads calls over several clusters. */
export type Strategy = "first-healthy" | "round-robin" | "weighted";

/** A validated rule. */
export interface Rule {
  name: string;
  line: number;
  namespaces?: RegExp[];
  resources?: ResourcePattern[];
  verbs?: Set<string>;
  labels?: Selector;
  clusters: string[];
  strategy: Strategy;
  weights: Record<string, number>;
  namespace?: string;
}

/** `resource[.group][/subresource]`, each part possibly `*`. */
export interface ResourcePattern {
  resource: string;
  group: string;
  subresource?: string;
}

/** A validated routing configuration. */
export interface RoutingConfig {
  discovery: string;
  default: string;
  rules: Rule[];
}

/** Raised for an invalid configuration; `message` is `file:line: what`. */
export class RoutingConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RoutingConfigError";
  }
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
const STRATEGIES = new Set(["first-healthy", "round-robin", "weighted"]);
const RULE_KEYS = new Set([
  "name",
  "match",
  "cluster",
  "clusters",
  "strategy",
  "weights",
  "namespace",
]);
const MATCH_KEYS = new Set(["namespaces", "resources", "verbs", "labels"]);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Where the configuration came from, and the clusters it may name. */
export interface ParseOptions {
  file: string;
  clusters: Set<string>;
}

/** Parses and validates a routing configuration. */
export function parseRoutingConfig(
  text: string,
  options: ParseOptions,
): RoutingConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  function fail(node: Node | undefined | null, message: string): never {
    const offset = node?.range?.[0];
    const line = offset === undefined ? 1 : lines.linePos(offset).line;
    throw new RoutingConfigError(`${options.file}:${line}: ${message}`);
  }
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e.linePos?.[0]?.line ?? 1;
    throw new RoutingConfigError(
      `${options.file}:${line}: invalid YAML: ${e.message.split("\n")[0]}`,
    );
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) {
    return { discovery: "local", default: "local", rules: [] };
  }
  if (!isMap(root)) fail(root, "the configuration must be a mapping");
  for (const pair of root.items) {
    const key = String(isScalar(pair.key) ? pair.key.value : "");
    if (!["discovery", "default", "rules"].includes(key)) {
      fail(
        pair.key as Node,
        `unknown key ${
          JSON.stringify(key)
        } (expected discovery, default, rules)`,
      );
    }
  }
  function clusterName(node: unknown, what: string): string {
    if (!isScalar(node) || typeof node.value !== "string") {
      fail(node as Node, `${what} must be a cluster name`);
    }
    if (!options.clusters.has(node.value)) {
      fail(
        node,
        `unknown cluster ${JSON.stringify(node.value)} in ${what} (known: ${
          [...options.clusters].sort().join(", ")
        })`,
      );
    }
    return node.value;
  }
  const discoveryNode = root.get("discovery", true);
  const defaultNode = root.get("default", true);
  const config: RoutingConfig = {
    discovery: discoveryNode === undefined
      ? "local"
      : clusterName(discoveryNode, "discovery"),
    default: defaultNode === undefined
      ? "local"
      : clusterName(defaultNode, "default"),
    rules: [],
  };
  const rulesNode = root.get("rules", true);
  if (rulesNode === undefined || rulesNode === null) return config;
  if (!isSeq(rulesNode)) fail(rulesNode as Node, "rules must be a list");
  rulesNode.items.forEach((item, index) => {
    if (!isMap(item)) fail(item as Node, `rule ${index + 1} must be a mapping`);
    config.rules.push(parseRule(item, index, { fail, clusterName, lines }));
  });
  return config;
}

interface RuleContext {
  fail(node: Node | undefined | null, message: string): never;
  clusterName(node: unknown, what: string): string;
  lines: LineCounter;
}

function stringList(
  node: unknown,
  what: string,
  ctx: RuleContext,
): Array<{ value: string; node: Node }> {
  if (!isSeq(node)) ctx.fail(node as Node, `${what} must be a list`);
  return node.items.map((item) => {
    if (
      !isScalar(item) || typeof item.value !== "string" || item.value === ""
    ) {
      ctx.fail(item as Node, `${what} must be a list of non-empty strings`);
    }
    return { value: item.value, node: item };
  });
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
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

function parseRule(map: YAMLMap, index: number, ctx: RuleContext): Rule {
  const line = ctx.lines.linePos(map.range?.[0] ?? 0).line;
  for (const pair of map.items) {
    const key = String(isScalar(pair.key) ? pair.key.value : "");
    if (!RULE_KEYS.has(key)) {
      ctx.fail(
        pair.key as Node,
        `rule ${index + 1}: unknown key ${JSON.stringify(key)}`,
      );
    }
  }
  const nameNode = map.get("name", true);
  const name = isScalar(nameNode) && typeof nameNode.value === "string"
    ? nameNode.value
    : `rule-${index + 1}`;
  const rule: Rule = {
    name,
    line,
    clusters: [],
    strategy: "first-healthy",
    weights: {},
  };
  const match = map.get("match", true);
  if (match !== undefined && match !== null) {
    if (!isMap(match)) {
      ctx.fail(match as Node, `rule ${name}: match must be a mapping`);
    }
    for (const pair of match.items) {
      const key = String(isScalar(pair.key) ? pair.key.value : "");
      if (!MATCH_KEYS.has(key)) {
        ctx.fail(
          pair.key as Node,
          `rule ${name}: unknown match key ${JSON.stringify(key)}`,
        );
      }
    }
    const namespaces = match.get("namespaces", true);
    if (namespaces !== undefined) {
      rule.namespaces = stringList(namespaces, "match.namespaces", ctx).map(
        ({ value, node }) => {
          if (!/^[a-z0-9*?]([-a-z0-9*?]*)$/.test(value)) {
            ctx.fail(
              node,
              `rule ${name}: bad namespace glob ${
                JSON.stringify(value)
              } (use letters, digits, -, * and ?)`,
            );
          }
          return globToRegExp(value);
        },
      );
    }
    const resources = match.get("resources", true);
    if (resources !== undefined) {
      rule.resources = stringList(resources, "match.resources", ctx).map(
        ({ value, node }) => {
          const pattern = parseResource(value);
          if (!pattern) {
            ctx.fail(
              node,
              `rule ${name}: bad resource ${
                JSON.stringify(value)
              } (expected resource[.group][/subresource], e.g. deployments.apps)`,
            );
          }
          return pattern;
        },
      );
    }
    const verbs = match.get("verbs", true);
    if (verbs !== undefined) {
      rule.verbs = new Set(
        stringList(verbs, "match.verbs", ctx).map(({ value, node }) => {
          if (!VERBS.has(value) && value !== "*") {
            ctx.fail(
              node,
              `rule ${name}: unknown verb ${
                JSON.stringify(value)
              } (expected one of ${[...VERBS].join(", ")})`,
            );
          }
          return value;
        }),
      );
      if (rule.verbs.has("*")) rule.verbs = undefined;
    }
    const labels = match.get("labels", true);
    if (labels !== undefined) {
      if (!isScalar(labels) || typeof labels.value !== "string") {
        ctx.fail(
          labels as Node,
          `rule ${name}: match.labels must be a selector string such as "tier=frontend"`,
        );
      }
      try {
        rule.labels = parseSelector(labels.value);
      } catch (error) {
        ctx.fail(
          labels,
          `rule ${name}: bad label selector: ${(error as Error).message}`,
        );
      }
    }
  }
  const one = map.get("cluster", true);
  const many = map.get("clusters", true);
  if ((one === undefined) === (many === undefined)) {
    ctx.fail(map, `rule ${name}: give exactly one of cluster or clusters`);
  }
  if (one !== undefined) {
    rule.clusters = [ctx.clusterName(one, `rule ${name}`)];
  } else {
    const list = stringList(many, "clusters", ctx);
    if (list.length === 0) {
      ctx.fail(many as Node, `rule ${name}: clusters is empty`);
    }
    rule.clusters = list.map(({ node }) =>
      ctx.clusterName(node, `rule ${name}`)
    );
  }
  const strategy = map.get("strategy", true);
  if (strategy !== undefined) {
    if (!isScalar(strategy) || !STRATEGIES.has(String(strategy.value))) {
      ctx.fail(
        strategy as Node,
        `rule ${name}: strategy must be first-healthy, round-robin or weighted`,
      );
    }
    rule.strategy = strategy.value as Strategy;
  }
  const weights = map.get("weights", true);
  if (weights !== undefined) {
    if (!isMap(weights)) {
      ctx.fail(
        weights as Node,
        `rule ${name}: weights must be a mapping of cluster to number`,
      );
    }
    for (const pair of weights.items) {
      const cluster = ctx.clusterName(pair.key, `rule ${name} weights`);
      const w = isScalar(pair.value) ? pair.value.value : undefined;
      if (typeof w !== "number" || !Number.isInteger(w) || w < 0) {
        ctx.fail(
          pair.value as Node,
          `rule ${name}: weight of ${cluster} must be a whole number >= 0`,
        );
      }
      rule.weights[cluster] = w;
    }
  }
  if (rule.strategy === "weighted") {
    if (!rule.clusters.some((c) => (rule.weights[c] ?? 0) > 0)) {
      ctx.fail(
        map,
        `rule ${name}: weighted needs a positive weight for at least one cluster`,
      );
    }
  }
  const ns = map.get("namespace", true);
  if (ns !== undefined) {
    if (
      !isScalar(ns) || typeof ns.value !== "string" || !DNS_LABEL.test(ns.value)
    ) {
      ctx.fail(ns as Node, `rule ${name}: namespace must be a namespace name`);
    }
    rule.namespace = ns.value;
  }
  return rule;
}
