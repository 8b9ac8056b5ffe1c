/**
 * Phase 2 routing rules: which cluster(s) a call goes to.
 *
 * The configuration is a YAML file (a mounted ConfigMap). It is validated as
 * a whole before use, with errors that name the file and line, so that a bad
 * edit is rejected and the previous configuration stays in force. One rule
 * is `rule.ts`'s (its `match:` block `match.ts`'s); matching a call against
 * the rules is `router.ts`'s job.
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

import { isMap, isScalar, isSeq } from "yaml";
import {
  checkKeys,
  type Fail,
  readYamlFile,
  type YamlFile,
} from "../config/yaml_file.ts";
import { parseRule, type Rule, type RuleContext } from "./rule.ts";

export type { ResourcePattern } from "./match.ts";
export type { Rule, Strategy } from "./rule.ts";

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

const TOP_KEYS = ["discovery", "default", "rules"];

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
  const file: YamlFile = readYamlFile(text, {
    file: options.file,
    error: (message) => new RoutingConfigError(message),
  });
  const root = file.root;
  if (root === null || (isScalar(root) && root.value === null)) {
    return { discovery: "local", default: "local", rules: [] };
  }
  if (!isMap(root)) file.fail(root, "the configuration must be a mapping");
  checkKeys(root, TOP_KEYS, {
    fail: file.fail,
    message: (key) =>
      `unknown key ${JSON.stringify(key)} (expected discovery, default, rules)`,
  });
  const ctx: RuleContext = {
    fail: file.fail,
    line: file.line,
    clusterName: (node, what) =>
      clusterName(node, { what, fail: file.fail, clusters: options.clusters }),
  };
  const discoveryNode = root.get("discovery", true);
  const defaultNode = root.get("default", true);
  return {
    discovery: discoveryNode === undefined
      ? "local"
      : ctx.clusterName(discoveryNode, "discovery"),
    default: defaultNode === undefined
      ? "local"
      : ctx.clusterName(defaultNode, "default"),
    rules: parseRules(root.get("rules", true), ctx),
  };
}

function parseRules(rulesNode: unknown, ctx: RuleContext): Rule[] {
  if (rulesNode === undefined || rulesNode === null) return [];
  if (!isSeq(rulesNode)) ctx.fail(rulesNode, "rules must be a list");
  return rulesNode.items.map((item, index) => {
    if (!isMap(item)) ctx.fail(item, `rule ${index + 1} must be a mapping`);
    return parseRule(item, index, ctx);
  });
}

/** A cluster name the registry knows; `what` says where it was named. */
function clusterName(
  node: unknown,
  options: { what: string; fail: Fail; clusters: Set<string> },
): string {
  const { what, clusters } = options;
  if (!isScalar(node) || typeof node.value !== "string") {
    options.fail(node, `${what} must be a cluster name`);
  }
  if (!clusters.has(node.value)) {
    options.fail(
      node,
      `unknown cluster ${JSON.stringify(node.value)} in ${what} (known: ${
        [...clusters].sort().join(", ")
      })`,
    );
  }
  return node.value;
}
