/**
 * From a matched rule to a plan: which cluster(s) serve this call, now.
 *
 * Rules name clusters; the router adds what changes from call to call:
 * cluster health (`first-healthy` skips unhealthy ones), the turn of
 * `round-robin`/`weighted` spreading for creates, and the fan-out of reads
 * across a spread set (objects created round-robin live in several
 * clusters, so a LIST must ask them all). Knows nothing of sockets.
 *
 * @module
 */

import type { RequestInfo } from "../kube/request_info.ts";
import type { RoutingConfig, Rule } from "./config.ts";
import { selectedClusters } from "./cluster_selector.ts";
import { type MatchInput, matchRule } from "./rule_match.ts";

export { type MatchInput, matchRule } from "./rule_match.ts";

/** The Pod's own cluster. */
export const LOCAL_CLUSTER = "local";

/** Where one call goes. */
export type Plan =
  /**
   * One cluster serves it. `decorate`: the rule spreads objects over
   * several clusters, so answers say which cluster an object lives in.
   */
  | {
    kind: "one";
    cluster: string;
    rule?: string;
    namespace?: string;
    decorate?: boolean;
    /**
     * `first-healthy`: the next clusters to try, in order, if this one
     * cannot be reached (health checks lag behind a sudden failure).
     */
    fallbacks?: string[];
  }
  /** Ask every cluster, merge the answers (LIST, WATCH). */
  | {
    kind: "fanout";
    clusters: string[];
    missing: string[];
    rule: string;
    namespace?: string;
    /** The rule lets a merged LIST leave out clusters that cannot answer. */
    partial?: boolean;
    /** Clusters the call policy keeps out (left out of the answer, named in a `Warning`). */
    denied?: string[];
  }
  /**
   * By-name call on a spread set: the cluster that holds the object.
   * `missing`: clusters of the set known to be down (they may hold it).
   */
  | {
    kind: "search";
    clusters: string[];
    missing?: string[];
    rule: string;
    namespace?: string;
  };

/** Extra facts about a call that only its body tells. */
export interface PlanInput extends MatchInput {
  /** Cluster named by the object's `mca.io/cluster` annotation. */
  objectCluster?: string;
}

/** Options of {@link Router.plan}. */
export interface PlanOptions {
  /**
   * Take a round-robin turn (default). A caller that plans twice for one
   * call (before and after reading its body) passes false the first time.
   */
  advance?: boolean;
}

/** Tells whether a cluster currently answers its health checks. */
export type HealthCheck = (cluster: string) => boolean;

/**
 * Plans calls under ONE routing version: everything a call decides (its
 * first look, the plan after reading its body, the turn it takes) comes
 * from the same configuration and health view, so a reload in the middle
 * of a call can never make it name a cluster its registry lacks.
 */
export interface Planner {
  plan(info: RequestInfo, input?: PlanInput, options?: PlanOptions): Plan;
}

/** One call on a spread set, as `#plan` found it. */
interface SpreadCall {
  /** The rule's clusters that answer their health checks now. */
  healthy: string[];
  info: RequestInfo;
  input: PlanInput;
  options: PlanOptions;
  /** The rule's name and namespace mapping, on every plan. */
  base: { rule: string; namespace?: string };
}

/** Turns calls into plans under the current configuration and health. */
export class Router {
  #config: () => RoutingConfig;
  #healthy: HealthCheck;
  #turns = new Map<string, Map<string, number>>();

  constructor(config: () => RoutingConfig, healthy: HealthCheck) {
    this.#config = config;
    this.#healthy = healthy;
  }

  /** The plan for one call, under the configuration in force now. */
  plan(
    info: RequestInfo,
    input: PlanInput = {},
    options: PlanOptions = {},
  ): Plan {
    return this.#plan(this.#config(), this.#healthy, info, input, options);
  }

  /**
   * A planner bound to one routing version (a call's snapshot); round-robin
   * turns are still shared by every call.
   */
  at(config: RoutingConfig, healthy: HealthCheck): Planner {
    return {
      plan: (info, input = {}, options = {}) =>
        this.#plan(config, healthy, info, input, options),
    };
  }

  #plan(
    config: RoutingConfig,
    healthyCheck: HealthCheck,
    info: RequestInfo,
    input: PlanInput,
    options: PlanOptions,
  ): Plan {
    if (!info.isResourceRequest) {
      return { kind: "one", cluster: config.discovery };
    }
    const rule = matchRule(config, info, input);
    if (!rule) return { kind: "one", cluster: config.default };
    const base = { rule: rule.name, namespace: rule.namespace };
    const healthy = rule.clusters.filter((c) => healthyCheck(c));
    if (rule.clusters.length === 1) {
      return { kind: "one", cluster: rule.clusters[0], ...base };
    }
    if (rule.strategy === "first-healthy") {
      const [first, ...rest] = healthy.length > 0 ? healthy : rule.clusters;
      // versions are the serving cluster's: answers say which (pinning.ts)
      const decorate = carriesVersions(info) ? { decorate: true } : {};
      return {
        kind: "one",
        cluster: first,
        fallbacks: rest,
        ...base,
        ...decorate,
      };
    }
    return this.#spread(rule, { healthy, info, input, options, base });
  }

  /**
   * A round-robin or weighted set: a create takes a turn, a LIST/WATCH fans
   * out to every healthy member, a by-name call goes to the cluster the
   * object's annotation names, else searches the set.
   */
  #spread(rule: Rule, call: SpreadCall): Plan {
    const { healthy, info, input, options, base } = call;
    // A create on a subresource (exec, eviction, token...) concerns an
    // object that already lives somewhere: it is a by-name call.
    const verb = info.verb === "create" && info.name !== "" ? "get" : info.verb;
    switch (verb) {
      case "create":
        return {
          kind: "one",
          cluster: options.advance === false
            ? (healthy[0] ?? rule.clusters[0])
            : this.#next(rule, healthy),
          ...base,
          decorate: true,
        };
      case "list":
      case "watch":
      case "deletecollection": {
        // the mca.io/cluster label selector narrows the set
        const set = selectedClusters(info.labelSelector, rule.clusters) ??
          rule.clusters;
        return {
          kind: "fanout",
          clusters: healthy.filter((c) => set.includes(c)),
          missing: set.filter((c) => !healthy.includes(c)),
          ...base,
          ...(rule.partial ? { partial: true } : {}),
        };
      }
      default:
        if (
          input.objectCluster && rule.clusters.includes(input.objectCluster)
        ) {
          return {
            kind: "one",
            cluster: input.objectCluster,
            ...base,
            decorate: true,
          };
        }
        return healthy.length > 0
          ? {
            kind: "search",
            clusters: healthy,
            missing: rule.clusters.filter((c) => !healthy.includes(c)),
            ...base,
          }
          : { kind: "search", clusters: rule.clusters, ...base };
    }
  }

  /** Smooth weighted round-robin (nginx's): even spread, exact ratios. */
  #next(rule: Rule, healthy: string[]): string {
    const candidates = healthy.length > 0 ? healthy : rule.clusters;
    const weight = (c: string) =>
      rule.strategy === "weighted" ? rule.weights[c] ?? 0 : 1;
    const live = candidates.filter((c) => weight(c) > 0);
    if (live.length === 0) return candidates[0];
    let turns = this.#turns.get(rule.name);
    if (!turns) {
      turns = new Map();
      this.#turns.set(rule.name, turns);
    }
    let total = 0;
    let best = live[0];
    for (const c of live) {
      const current = (turns.get(c) ?? 0) + weight(c);
      turns.set(c, current);
      total += weight(c);
      if (current > (turns.get(best) ?? 0)) best = c;
    }
    turns.set(best, (turns.get(best) ?? 0) - total);
    return best;
  }
}

/**
 * Calls whose answers are objects with versions (not logs, proxies or
 * streams of bytes): on a first-healthy set, those versions are marked
 * with the cluster that issued them.
 */
function carriesVersions(info: RequestInfo): boolean {
  return ["", "status", "scale"].includes(info.subresource);
}

/** True when a rule needs the object's labels from the request body. */
export function needsBodyLabels(
  config: RoutingConfig,
  info: RequestInfo,
): boolean {
  return (info.verb === "create" || info.verb === "update") &&
    config.rules.some((r) => r.labels !== undefined);
}
