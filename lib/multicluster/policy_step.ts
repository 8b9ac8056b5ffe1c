/**
 * The policy step of the pipeline: between planning and forwarding, every
 * cluster a plan names is checked. A denied cluster is left out (a fan-out
 * names it in its `Warning`, like a cluster that is down); a call no
 * cluster may serve is refused. In `audit` mode verdicts are recorded and
 * nothing is left out.
 *
 * @module
 */

import type { RequestInfo } from "../kube/request_info.ts";
import type {
  CallDecision,
  PolicyVerdict,
  WorkloadIdentity,
} from "../observe/observer.ts";
import type { Plan } from "../routing/router.ts";
import type { CallPolicy } from "../policy/source.ts";

/** A policy consulted per cluster before a call is sent (lib/policy/). */
export type PolicyCheck = CallPolicy;

/** The plan after the policy, and what the observers are told. */
export interface Checked {
  plan: Plan;
  decision: CallDecision;
  refused: boolean;
}

function clustersOf(plan: Plan): string[] {
  return plan.kind === "one"
    ? [plan.cluster, ...(plan.fallbacks ?? [])]
    : plan.clusters;
}

/** Checks a plan's clusters against the policy (when there is one). */
export function applyPolicy(
  plan: Plan,
  info: RequestInfo,
  options: { policy?: PolicyCheck; identity?: WorkloadIdentity },
): Checked {
  const decision: CallDecision = {
    plan: plan.kind,
    clusters: clustersOf(plan),
    missing: plan.kind === "fanout" ? [...plan.missing] : [],
    rule: plan.rule,
  };
  const policy = options.policy;
  if (!policy) return { plan, decision, refused: false };
  const verdicts: Record<string, PolicyVerdict> = {};
  const namespace = plan.namespace ?? (info.namespace || undefined);
  const ownNamespace = ownNamespaceOf(info, namespace, options.identity);
  for (const cluster of decision.clusters) {
    verdicts[cluster] = policy.check({
      info,
      cluster,
      namespace,
      identity: options.identity,
      ownNamespace,
    });
  }
  decision.policy = verdicts;
  const denied = (c: string) =>
    !verdicts[c].allowed && verdicts[c].mode === "enforce";
  const allowed = decision.clusters.filter((c) => !denied(c));
  if (allowed.length === decision.clusters.length) {
    return { plan, decision, refused: false };
  }
  if (allowed.length === 0) {
    return {
      plan,
      decision: { ...decision, plan: "refused", clusters: [] },
      refused: true,
    };
  }
  const left = decision.clusters.filter(denied);
  decision.clusters = allowed;
  decision.missing.push(...left);
  return { plan: narrow(plan, allowed, left), decision, refused: false };
}

/**
 * The Pod's own namespace as this plan's clusters see it: when the app
 * names its own namespace, the routing rule's mapping (if any) gives its
 * name there (`app-ns` may be `remote-ns` on east); any other namespace is
 * compared with the Pod's own, unmapped.
 */
function ownNamespaceOf(
  info: RequestInfo,
  mapped: string | undefined,
  identity: WorkloadIdentity | undefined,
): string | undefined {
  if (!identity) return undefined;
  return info.namespace === identity.namespace ? mapped : identity.namespace;
}

function narrow(plan: Plan, allowed: string[], left: string[]): Plan {
  if (plan.kind === "one") {
    const [cluster, ...fallbacks] = allowed;
    return { ...plan, cluster, fallbacks };
  }
  if (plan.kind === "fanout") {
    return {
      ...plan,
      clusters: allowed,
      denied: [...plan.denied ?? [], ...left],
    };
  }
  return { ...plan, clusters: allowed };
}
