/**
 * One rule of the routing file, validated: what it matches (namespaces,
 * resources, verbs, labels), the clusters it names and how calls spread over
 * them (`match.ts` reads the `match:` block). `config.ts` reads the file as a
 * whole and hands each rule here; the checks read top to bottom in the order
 * their errors are reported.
 *
 * @module
 */

import { isMap, isScalar } from "yaml";
import type { YAMLMap } from "yaml";
import type { Selector } from "../kube/label_selector.ts";
import { checkKeys, type Fail } from "../config/yaml_file.ts";
import { parseMatch, type ResourcePattern, stringList } from "./match.ts";

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
  /**
   * A merged LIST may leave out a cluster that cannot answer (named in a
   * `Warning`) instead of failing with 503. Off by default: informers take
   * a smaller list for deletions.
   */
  partial?: boolean;
}

/** What a rule needs from the file around it. */
export interface RuleContext {
  fail: Fail;
  line(node: unknown): number;
  /** The name of a known cluster, or a failure that names `what`. */
  clusterName(node: unknown, what: string): string;
}

/** A rule's context and its name (for every error); also a MatchScope. */
interface RuleScope extends RuleContext {
  name: string;
}

const STRATEGIES = new Set(["first-healthy", "round-robin", "weighted"]);
const RULE_KEYS = new Set([
  "name",
  "match",
  "cluster",
  "clusters",
  "strategy",
  "weights",
  "namespace",
  "partial",
]);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Validates rule number `index + 1`; the first error found is thrown. */
export function parseRule(
  map: YAMLMap,
  index: number,
  ctx: RuleContext,
): Rule {
  checkKeys(map, RULE_KEYS, {
    fail: ctx.fail,
    message: (key) => `rule ${index + 1}: unknown key ${JSON.stringify(key)}`,
  });
  const nameNode = map.get("name", true);
  const name = isScalar(nameNode) && typeof nameNode.value === "string"
    ? nameNode.value
    : `rule-${index + 1}`;
  const scope: RuleScope = { ...ctx, name };
  const rule: Rule = {
    name,
    line: ctx.line(map),
    clusters: [],
    strategy: "first-healthy",
    weights: {},
  };
  const match = map.get("match", true);
  if (match !== undefined && match !== null) {
    Object.assign(rule, parseMatch(match, scope));
  }
  rule.clusters = parseClusters(map, scope);
  const strategy = map.get("strategy", true);
  if (strategy !== undefined) rule.strategy = parseStrategy(strategy, scope);
  const weights = map.get("weights", true);
  if (weights !== undefined) rule.weights = parseWeights(weights, scope);
  if (rule.strategy === "weighted") {
    if (!rule.clusters.some((c) => (rule.weights[c] ?? 0) > 0)) {
      ctx.fail(
        map,
        `rule ${name}: weighted needs a positive weight for at least one cluster`,
      );
    }
  }
  const ns = map.get("namespace", true);
  if (ns !== undefined) rule.namespace = namespaceName(ns, scope);
  const partial = map.get("partial", true);
  if (partial !== undefined) rule.partial = parsePartial(partial, rule, scope);
  return rule;
}

/** `cluster: x` or `clusters: [x, y]`, exactly one of them. */
function parseClusters(map: YAMLMap, scope: RuleScope): string[] {
  const { fail, name, clusterName } = scope;
  const one = map.get("cluster", true);
  const many = map.get("clusters", true);
  if ((one === undefined) === (many === undefined)) {
    fail(map, `rule ${name}: give exactly one of cluster or clusters`);
  }
  if (one !== undefined) return [clusterName(one, `rule ${name}`)];
  const list = stringList(many, "clusters", scope);
  if (list.length === 0) fail(many, `rule ${name}: clusters is empty`);
  return list.map(({ node }) => clusterName(node, `rule ${name}`));
}

function parseStrategy(strategy: unknown, scope: RuleScope): Strategy {
  if (!isScalar(strategy) || !STRATEGIES.has(String(strategy.value))) {
    scope.fail(
      strategy,
      `rule ${scope.name}: strategy must be first-healthy, round-robin or weighted`,
    );
  }
  return strategy.value as Strategy;
}

function parseWeights(
  weights: unknown,
  scope: RuleScope,
): Record<string, number> {
  const name = scope.name;
  if (!isMap(weights)) {
    scope.fail(
      weights,
      `rule ${name}: weights must be a mapping of cluster to number`,
    );
  }
  const out: Record<string, number> = {};
  for (const pair of weights.items) {
    const cluster = scope.clusterName(pair.key, `rule ${name} weights`);
    const w = isScalar(pair.value) ? pair.value.value : undefined;
    if (typeof w !== "number" || !Number.isInteger(w) || w < 0) {
      scope.fail(
        pair.value,
        `rule ${name}: weight of ${cluster} must be a whole number >= 0`,
      );
    }
    out[cluster] = w;
  }
  return out;
}

/** `partial:`, a boolean, meaningful only where LISTs are merged. */
function parsePartial(node: unknown, rule: Rule, scope: RuleScope): boolean {
  if (!isScalar(node) || typeof node.value !== "boolean") {
    scope.fail(node, `rule ${scope.name}: partial must be true or false`);
  }
  if (rule.strategy === "first-healthy") {
    scope.fail(
      node,
      `rule ${scope.name}: partial applies only to round-robin or weighted (merged LISTs)`,
    );
  }
  return node.value;
}

/** `namespace:`, the app's namespace in the rule's cluster(s). */
function namespaceName(ns: unknown, scope: RuleScope): string {
  if (
    !isScalar(ns) || typeof ns.value !== "string" || !DNS_LABEL.test(ns.value)
  ) {
    scope.fail(ns, `rule ${scope.name}: namespace must be a namespace name`);
  }
  return ns.value;
}
