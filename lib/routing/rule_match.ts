/**
 * Which rule a call matches: the first whose verbs, namespaces, resources
 * and labels all fit (labels from the body's object, or implied by the
 * request's label selector).
 *
 * @module
 */

import type { RequestInfo } from "../kube/request_info.ts";
import type { ResourcePattern, RoutingConfig, Rule } from "./config.ts";
import {
  matchesLabels,
  parseSelector,
  selectorImplies,
} from "../kube/label_selector.ts";

function resourceMatches(
  patterns: ResourcePattern[],
  info: RequestInfo,
): boolean {
  return patterns.some((p) =>
    (p.resource === "*" || p.resource === info.resource) &&
    (p.group === "*" || p.group === info.apiGroup) &&
    (p.subresource === undefined
      ? true
      : p.subresource === "*" || p.subresource === info.subresource)
  );
}

/** What a call carries that rules can match beyond its RequestInfo. */
export interface MatchInput {
  /** Labels of the object in a create/update body. */
  objectLabels?: Record<string, string>;
}

/** The first rule matching a resource request, or undefined. */
export function matchRule(
  config: RoutingConfig,
  info: RequestInfo,
  input: MatchInput = {},
): Rule | undefined {
  if (!info.isResourceRequest) return undefined;
  return config.rules.find((rule) => {
    if (rule.verbs && !rule.verbs.has(info.verb)) return false;
    if (rule.namespaces) {
      if (info.namespace === "") return false;
      if (!rule.namespaces.some((re) => re.test(info.namespace))) return false;
    }
    if (rule.resources && !resourceMatches(rule.resources, info)) return false;
    if (rule.labels) {
      if (input.objectLabels) {
        return matchesLabels(rule.labels, input.objectLabels);
      }
      if (info.labelSelector === undefined) return false;
      try {
        return selectorImplies(parseSelector(info.labelSelector), rule.labels);
      } catch {
        return false;
      }
    }
    return true;
  });
}
