import assert from "node:assert/strict";
import fc from "fast-check";
import { annotations } from "../../lib/audit/annotations.ts";
import type {
  CallDecision,
  PolicyVerdict,
} from "../../lib/observe/observer.ts";

/**
 * The first, plainly written form of the policy annotations (arrays and a
 * Set per call), kept as the oracle for the allocation-light one.
 */
function oracle(policy: Record<string, PolicyVerdict>): Record<string, string> {
  const verdicts = Object.entries(policy);
  if (verdicts.length === 0) return {};
  const denied = verdicts.filter(([, v]) => !v.allowed);
  const enforce = verdicts.some(([, v]) => v.mode === "enforce");
  const partial = denied.length > 0 && denied.length < verdicts.length;
  const out: Record<string, string> = {
    "mca.io/policy-decision": denied.length === 0
      ? "allow"
      : !enforce
      ? "deny-audit-only"
      : partial
      ? "partial"
      : "deny",
  };
  const naming = partial ? verdicts : denied.length > 0 ? denied : verdicts;
  const rules = [...new Set(naming.map(([, v]) => v.rule).filter(Boolean))];
  if (rules.length > 0) out["mca.io/policy-rule"] = rules.join(",");
  out["mca.io/policy-reason"] = (denied[0] ?? verdicts[0])[1].reason;
  if (denied.length > 0) {
    out["mca.io/policy-denied-clusters"] = denied.map(([c]) => c).join(",");
  }
  return out;
}

const verdict: fc.Arbitrary<PolicyVerdict> = fc.record({
  allowed: fc.boolean(),
  mode: fc.constantFrom("enforce" as const, "audit" as const),
  rule: fc.option(fc.constantFrom("a", "b", "no-secrets"), {
    nil: undefined,
  }),
  basis: fc.constantFrom("rule" as const, "default" as const),
  reason: fc.string({ maxLength: 8 }),
});

Deno.test("audit annotations: the policy's verdicts as the plain form gives them, for any verdicts", () => {
  fc.assert(
    fc.property(
      fc.dictionary(fc.constantFrom("local", "east", "west", "x"), verdict),
      (policy) => {
        const decision: CallDecision = {
          plan: "one",
          clusters: [],
          missing: [],
          policy,
        };
        assert.deepEqual(annotations(decision, []), oracle(policy));
      },
    ),
    { numRuns: 2000 },
  );
});
