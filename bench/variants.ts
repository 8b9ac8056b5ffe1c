/**
 * The mca variants the paired cost benchmarks compare: two all-off ones (an
 * A/A pair), governance (the 100-rule call policy of `governance.ts` plus
 * the audit log at Metadata to a file), metrics (served on a loopback port)
 * and tracing sampled at 1 % (OTLP protobuf to a loopback sink). One table,
 * so that `cpu_ab.ts` and `instructions.ts` measure the same five things.
 *
 * @module
 */

import { join } from "node:path";
import type { McaOptions } from "./mca.ts";
import { policyOf100Rules } from "./governance.ts";

/** The name of one variant. */
export type Variant = "off" | "off-b" | "governance" | "metrics" | "tracing-1";

/** Every variant, in the order reports list them. */
export const VARIANTS: readonly Variant[] = [
  "off",
  "off-b",
  "governance",
  "metrics",
  "tracing-1",
];

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
`;

/** Writes the policy and audit-policy files the governance variant reads. */
export async function writeGovernanceFiles(dir: string): Promise<void> {
  await Deno.writeTextFile(join(dir, "policy.yaml"), policyOf100Rules());
  await Deno.writeTextFile(join(dir, "audit-policy.yaml"), AUDIT_POLICY);
}

/**
 * `startMca` options of `variant` (the files of
 * {@linkcode writeGovernanceFiles} in `dir`; spans to `sinkPort`).
 */
export function variantOptions(
  variant: Variant,
  { dir, sinkPort }: { dir: string; sinkPort: number },
): McaOptions {
  const base = { dir, name: variant };
  switch (variant) {
    case "off":
    case "off-b":
      return base;
    case "governance":
      return {
        ...base,
        args: [
          `--policy=${join(dir, "policy.yaml")}`,
          `--audit-policy=${join(dir, "audit-policy.yaml")}`,
          `--audit-log=${join(dir, "audit.log")}`,
          "--audit-log-maxsize=1024",
        ],
      };
    case "metrics":
      return { ...base, metrics: true };
    case "tracing-1":
      return {
        ...base,
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sinkPort}`,
          OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
          OTEL_TRACES_SAMPLER_ARG: "0.01",
        },
      };
  }
}
