/**
 * What only MCA knows about a call, as the `mca.io/*` annotations of its
 * audit events: the clusters, the routing rule, the policy's verdict and
 * each upstream's `Audit-Id`.
 *
 * @module
 */

import type {
  CallDecision,
  CallEnd,
  PolicyVerdict,
} from "../observe/observer.ts";

/** What only MCA knows, as `mca.io/*` annotations. */
export function annotations(
  decision: CallDecision | undefined,
  auditIds: Array<[string, string]>,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (decision) {
    if (decision.clusters.length > 0) {
      out["mca.io/clusters"] = decision.clusters.join(",");
    }
    if (decision.missing.length > 0) {
      out["mca.io/missing-clusters"] = decision.missing.join(",");
    }
    if (decision.rule) out["mca.io/routing-rule"] = decision.rule;
    addPolicyAnnotations(out, decision.policy);
  }
  if (auditIds.length === 1) {
    out["mca.io/upstream-audit-id"] = auditIds[0][1];
  } else if (auditIds.length > 1) {
    out["mca.io/upstream-audit-id"] = auditIds.map(([c, id]) => `${c}=${id}`)
      .join(",");
  }
  return out;
}

/**
 * The policy's verdicts as annotations. Loops over the verdicts, no
 * intermediate arrays: this runs for every audited call, and its garbage
 * was a fifth of what an audited call allocates.
 */
function addPolicyAnnotations(
  out: Record<string, string>,
  policy: Record<string, PolicyVerdict> | undefined,
): void {
  let verdicts = 0;
  let denied = 0;
  let enforce = false;
  let first: PolicyVerdict | undefined;
  let firstDenied: PolicyVerdict | undefined;
  for (const cluster in policy) {
    const v = policy[cluster];
    verdicts++;
    first ??= v;
    if (v.mode === "enforce") enforce = true;
    if (!v.allowed) {
      denied++;
      firstDenied ??= v;
    }
  }
  if (first === undefined) return;
  const partial = denied > 0 && denied < verdicts;
  out["mca.io/policy-decision"] = denied === 0
    ? "allow"
    : !enforce
    ? "deny-audit-only"
    : partial
    ? "partial"
    : "deny";
  // every verdict's rule: a partial answer names the rules that let
  // clusters in and kept them out; otherwise all verdicts agree
  const rules = ruleNames(policy!);
  if (rules) out["mca.io/policy-rule"] = rules;
  out["mca.io/policy-reason"] = (firstDenied ?? first).reason;
  // a refusal names its clusters too: decision.clusters is empty then
  if (denied > 0) {
    let clusters = "";
    for (const cluster in policy) {
      if (policy[cluster].allowed) continue;
      clusters += clusters === "" ? cluster : `,${cluster}`;
    }
    out["mca.io/policy-denied-clusters"] = clusters;
  }
}

/** The verdicts' distinct rule names, comma-separated; "" when none. */
function ruleNames(policy: Record<string, PolicyVerdict>): string {
  let out = "";
  let seen: Set<string> | undefined;
  for (const cluster in policy) {
    const v = policy[cluster];
    if (!v.rule) continue;
    if (out === "") {
      out = v.rule;
      continue;
    }
    seen ??= new Set(out.split(","));
    if (seen.has(v.rule)) continue;
    seen.add(v.rule);
    out += `,${v.rule}`;
  }
  return out;
}

/**
 * Adds how each cluster of a call that reached more than one fared
 * (`mca.io/cluster-outcomes: east=200,west=unreachable`): a fan-out's
 * clusters, or a failover's tries.
 */
export function withOutcomes(
  out: Record<string, string>,
  end: CallEnd,
): Record<string, string> {
  if (end.outcomes.length < 2) return out;
  out["mca.io/cluster-outcomes"] = end.outcomes.map((o) =>
    `${o.cluster}=${o.error ?? o.status ?? "none"}`
  ).join(",");
  return out;
}
