/**
 * The `mca.io/cluster` label selector: a LIST or WATCH of a spread set may
 * name the clusters it wants (`mca.io/cluster=east`, `mca.io/cluster in
 * (east,west)`, `mca.io/cluster!=local`), the way out of names held by two
 * clusters (a cache per cluster, keyed by namespace and name in each). MCA
 * keeps those terms for itself: the clusters never see them (their objects
 * carry no such label).
 *
 * @module
 */

import {
  matchesLabels,
  parseSelector,
  type Requirement,
  type Selector,
} from "../kube/label_selector.ts";

/** The label key that selects clusters (the annotation objects are marked with). */
export const CLUSTER_LABEL = "mca.io/cluster";

function parsed(selector: string | undefined): Selector | undefined {
  if (selector === undefined || !selector.includes(CLUSTER_LABEL)) {
    return undefined;
  }
  try {
    return parseSelector(selector);
  } catch {
    return undefined; // the cluster answers the malformed selector
  }
}

/**
 * The clusters of `clusters` the selector's `mca.io/cluster` terms keep,
 * in order; undefined when it has none.
 */
export function selectedClusters(
  selector: string | undefined,
  clusters: string[],
): string[] | undefined {
  const terms = parsed(selector)?.filter((r) => r.key === CLUSTER_LABEL);
  if (!terms || terms.length === 0) return undefined;
  return clusters.filter((c) => matchesLabels(terms, { [CLUSTER_LABEL]: c }));
}

/** The selector without its `mca.io/cluster` terms (unchanged when it has none). */
export function withoutClusterTerms(selector: string): string {
  const requirements = parsed(selector);
  if (!requirements?.some((r) => r.key === CLUSTER_LABEL)) return selector;
  return requirements.filter((r) => r.key !== CLUSTER_LABEL).map(format)
    .join(",");
}

function format(r: Requirement): string {
  switch (r.operator) {
    case "=":
    case "!=":
      return `${r.key}${r.operator}${r.values[0]}`;
    case "in":
    case "notin":
      return `${r.key} ${r.operator} (${r.values.join(",")})`;
    case "exists":
      return r.key;
    case "!":
      return `!${r.key}`;
  }
}
