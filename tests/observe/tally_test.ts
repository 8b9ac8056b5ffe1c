import assert from "node:assert/strict";
import {
  Counter,
  Histogram,
  type OpenMetricsContentType,
  Registry,
} from "prom-client";
import { HistogramTally, Tally } from "../../lib/observe/tally.ts";
import { REQUEST_DURATION_BUCKETS } from "../../lib/observe/metrics.ts";

function registries() {
  const text = new Registry();
  const open = new Registry<OpenMetricsContentType>();
  open.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  return { text, open, registers: [text, open] };
}

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const NAMES = ["cluster", "verb"];
const CLUSTERS = ["local", "east", 'we"ird\\name\n'];
const VERBS = ["GET", "LIST", "APPLY"];

Deno.test("tally: a histogram kept until scraped exports what prom-client's own does", async () => {
  for (const seed of [1, 7, 42, 2026]) {
    const next = random(seed);
    const ours = registries();
    const theirs = registries();
    const options = {
      name: "h_seconds",
      help: "help",
      labelNames: NAMES,
      buckets: [...REQUEST_DURATION_BUCKETS],
    };
    const tally = new HistogramTally({ ...options, registers: ours.registers });
    const plain = new Histogram({ ...options, registers: theirs.registers });
    for (let i = 0; i < 2000; i++) {
      const values = [
        CLUSTERS[Math.floor(next() * 3)],
        VERBS[Math.floor(next() * 3)],
      ];
      // on bounds, between them, past the last one, and zero
      const r = next();
      const v = r < 0.1
        ? REQUEST_DURATION_BUCKETS[Math.floor(next() * 23)]
        : r < 0.15
        ? 100 + next() * 100
        : r < 0.2
        ? 0
        : next() * next() * 10;
      tally.observe(values, v);
      plain.observe({ cluster: values[0], verb: values[1] }, v);
    }
    assert.equal(await ours.text.metrics(), await theirs.text.metrics());
    assert.equal(await ours.open.metrics(), await theirs.open.metrics());
    // a second scrape sees the same (the table is rebuilt, not added to)
    assert.equal(await ours.text.metrics(), await theirs.text.metrics());
  }
});

Deno.test("tally: a counter kept until scraped exports what prom-client's own does", async () => {
  const ours = registries();
  const theirs = registries();
  const options = { name: "c_total", help: "help", labelNames: NAMES };
  const tally = new Tally({ ...options, registers: ours.registers });
  const plain = new Counter({ ...options, registers: theirs.registers });
  const next = random(9);
  for (let i = 0; i < 500; i++) {
    const values = [
      CLUSTERS[Math.floor(next() * 3)],
      VERBS[Math.floor(next() * 3)],
    ];
    const n = Math.floor(next() * 5);
    tally.add(values, n);
    plain.inc({ cluster: values[0], verb: values[1] }, n);
  }
  assert.equal(await ours.text.metrics(), await theirs.text.metrics());
  assert.equal(await ours.open.metrics(), await theirs.open.metrics());
});

Deno.test("tally: values that are not finite numbers are not recorded", async () => {
  const ours = registries();
  const tally = new HistogramTally({
    name: "h_seconds",
    help: "help",
    labelNames: ["cluster"],
    buckets: [1],
    registers: ours.registers,
  });
  tally.observe(["a"], NaN);
  tally.observe(["a"], Infinity);
  tally.observe(["a"], 0.5);
  const text = await ours.text.metrics();
  assert.match(text, /^h_seconds_count\{cluster="a"\} 1$/m);
  assert.match(text, /^h_seconds_sum\{cluster="a"\} 0.5$/m);
});
