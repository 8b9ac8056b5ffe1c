/**
 * The summary and verdicts of the `work` bench section: pure functions over
 * counts, checked against ratios worked out by hand.
 *
 * @module
 */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  instructionCosts,
  type InstructionCount,
  instructionTargets,
} from "../../bench/instructions.ts";
import type { Variant } from "../../bench/variants.ts";

function count(
  variant: Variant,
  round: number,
  perCall: number,
  concurrency = 1,
): InstructionCount {
  return { variant, round, concurrency, perCall, idlePerS: 0 };
}

Deno.test("work: each variant against the median of both all-off ones", () => {
  const costs = instructionCosts([
    count("off", 1, 100),
    count("off-b", 1, 102),
    count("off", 2, 98),
    count("off-b", 2, 100),
    count("metrics", 1, 102),
    count("metrics", 2, 103),
    count("governance", 1, 106),
    count("governance", 2, 104),
  ]);
  const by = (v: Variant) => costs.find((c) => c.variant === v)!;
  // off median of 98, 100, 100, 102 is 100
  assertEquals(by("metrics").ratio, 1.025);
  assertEquals([by("metrics").min, by("metrics").max], [1.02, 1.03]);
  assertEquals(by("governance").ratio, 1.05);
  assertEquals(by("off-b").ratio, 1.01);
});

Deno.test("work: verdicts against the bound, open when A/A is wider", () => {
  const quiet = instructionTargets(instructionCosts([
    count("off", 1, 100),
    count("off-b", 1, 100),
    count("metrics", 1, 104),
    count("metrics", 1, 101, 16),
    count("off", 1, 100, 16),
    count("off-b", 1, 100, 16),
    count("governance", 1, 104),
  ]));
  const verdict = (what: string, list = quiet) =>
    list.find((t) => t.target.startsWith(what))?.met;
  // the worst concurrency decides: c=1 ×1.04 misses the 3 % of metrics
  assertEquals(verdict("metrics on"), false);
  assertEquals(verdict("100-rule policy"), true);
  assertEquals(verdict("tracing"), undefined); // not measured
  const noisy = instructionTargets(instructionCosts([
    count("off", 1, 100),
    count("off-b", 1, 108),
    count("metrics", 1, 104),
  ]));
  assertEquals(verdict("metrics on", noisy), null);
});
