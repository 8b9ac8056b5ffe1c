/**
 * Issue 11 fuzzing: generated manifests over YAML's corners through
 * injectManifests, judged by an independent YAML 1.1 reader (PyYAML) for
 * "same meaning except the injected fields", plus byte-identical re-runs and
 * one-line refusals. Fixed seed; MCA_FUZZ_RUNS / MCA_FUZZ_SEED for more
 * (`deno task fuzz:inject`).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { injectManifests } from "../../lib/inject/manifest.ts";
import { InjectError } from "../../lib/inject/pod_spec.ts";
import { fuzzCase } from "../support/manifest_fuzz.ts";
import { judge, type OracleCase } from "../support/pyyaml.ts";

/** MCA_FUZZ_RUNS wins; `deno task fuzz:inject` sets the larger default. */
const RUNS = Number(
  Deno.env.get("MCA_FUZZ_RUNS") ?? Deno.env.get("MCA_FUZZ_DEFAULT_RUNS") ??
    1_000,
);
if (!Number.isInteger(RUNS) || RUNS < 1) {
  throw new Error("MCA_FUZZ_RUNS must be a positive integer");
}
const SEED = Number(Deno.env.get("MCA_FUZZ_SEED") ?? 20261111);
const BATCH = 2_000;

Deno.test(`inject fuzz: ${RUNS} manifests keep their YAML 1.1 meaning (seed ${SEED})`, async () => {
  const cases = fc.sample(fuzzCase, { numRuns: RUNS, seed: SEED });
  const judged: OracleCase[] = [];
  const failures: string[] = [];
  let refusals = 0;
  cases.forEach((c, i) => {
    let output: string;
    try {
      output = injectManifests(c.input);
    } catch (error) {
      if (!(error instanceof InjectError) || error.message.includes("\n")) {
        failures.push(`case ${i}: not a one-line refusal: ${error}`);
      }
      refusals++;
      return;
    }
    if (c.mustRefuse) failures.push(`case ${i}: accepted, must refuse`);
    let again: string;
    try {
      again = injectManifests(output);
    } catch (error) {
      again = `refused: ${error}`;
    }
    if (again !== output) {
      const at = [...output].findIndex((ch, k) => again[k] !== ch);
      failures.push(
        `case ${i}: second run differs at ${at}: ${
          JSON.stringify(output.slice(at - 80, at + 80))
        } -> ${JSON.stringify(again.slice(at - 80, at + 80))}`,
      );
    }
    judged.push({ input: c.input, output, json: c.json });
  });
  for (let i = 0; i < judged.length; i += BATCH) {
    const batch = judged.slice(i, i + BATCH);
    const verdicts = await judge(batch);
    verdicts.forEach((v, j) => {
      if (v !== "ok") {
        failures.push(
          `${v}\n--- input\n${batch[j].input}--- output\n${batch[j].output}`,
        );
      }
    });
  }
  assert.deepEqual(failures.slice(0, 3), [], `${failures.length} failures`);
  // the test must not pass by refusing everything
  assert.ok(
    judged.length > RUNS / 3,
    `only ${judged.length} judged, ${refusals} refused`,
  );
});
