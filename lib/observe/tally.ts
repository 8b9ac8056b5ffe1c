/**
 * Counter and histogram values kept in a plain `Map` and handed to
 * prom-client only when scraped. prom-client hashes and validates the label
 * set on every `inc` or `observe` (about 1–2 µs; a histogram also turns the
 * bucket's bound into a property name); calls are counted on the hot path,
 * scrapes come every 15–60 s, so the work moves to the scrape.
 *
 * @module
 */

import {
  Counter,
  Histogram,
  type OpenMetricsContentType,
  type Registry,
} from "prom-client";

type Registers = (Registry | Registry<OpenMetricsContentType>)[];

function labelsOf(
  names: readonly string[],
  values: readonly string[],
): Record<string, string> {
  const labels: Record<string, string> = {};
  names.forEach((n, i) => labels[n] = values[i]);
  return labels;
}

interface Entry {
  labels: Record<string, string>;
  value: number;
}

/** A counter family whose values live in a `Map` until scraped. */
export class Tally {
  #entries = new Map<string, Entry>();
  #names: readonly string[];

  constructor(
    options: {
      name: string;
      help: string;
      labelNames: readonly string[];
      registers: Registers;
    },
  ) {
    this.#names = options.labelNames;
    const entries = this.#entries;
    new Counter({
      name: options.name,
      help: options.help,
      labelNames: [...options.labelNames],
      registers: options.registers,
      collect() {
        this.reset();
        for (const e of entries.values()) this.inc(e.labels, e.value);
      },
    });
  }

  /** Adds `value` to the series of `values` (in `labelNames` order). */
  add(values: readonly string[], value = 1): void {
    const key = values.join("\u0001");
    const entry = this.#entries.get(key);
    if (entry) {
      entry.value += value;
      return;
    }
    this.#entries.set(key, { labels: labelsOf(this.#names, values), value });
  }
}

interface Series {
  labels: Record<string, string>;
  /** Observations per bucket, not cumulative; past the last bound: none. */
  counts: number[];
  sum: number;
  count: number;
}

/** The shape prom-client 15's `Histogram` keeps per series and exports. */
interface PromSeries {
  labels: Record<string, string>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/**
 * A histogram family whose values live in a `Map` until scraped. At scrape
 * time they are written into a prom-client `Histogram`'s series table (the
 * one internal this relies on; prom-client is pinned, and
 * `tests/observe/tally_test.ts` compares the exposition with a plain
 * prom-client histogram fed the same values), so the text and OpenMetrics
 * formats stay prom-client's.
 */
export class HistogramTally {
  #series = new Map<string, Series>();
  #names: readonly string[];
  #bounds: readonly number[];

  constructor(
    options: {
      name: string;
      help: string;
      labelNames: readonly string[];
      buckets: readonly number[];
      registers: Registers;
    },
  ) {
    this.#names = options.labelNames;
    const bounds = this.#bounds = [...options.buckets].sort((a, b) => a - b);
    const series = this.#series;
    new Histogram({
      name: options.name,
      help: options.help,
      labelNames: [...options.labelNames],
      buckets: [...bounds],
      registers: options.registers,
      collect() {
        const table: Record<string, PromSeries> = {};
        for (const [key, s] of series) {
          const bucketValues: Record<number, number> = {};
          bounds.forEach((b, i) => bucketValues[b] = s.counts[i]);
          table[key] = {
            labels: s.labels,
            bucketValues,
            sum: s.sum,
            count: s.count,
          };
        }
        (this as unknown as { hashMap: Record<string, PromSeries> }).hashMap =
          table;
      },
    });
  }

  /** Records `value` in the series of `values` (in `labelNames` order). */
  observe(values: readonly string[], value: number): void {
    if (!Number.isFinite(value)) return;
    const key = values.join("\u0001");
    let s = this.#series.get(key);
    if (s === undefined) {
      s = {
        labels: labelsOf(this.#names, values),
        counts: this.#bounds.map(() => 0),
        sum: 0,
        count: 0,
      };
      this.#series.set(key, s);
    }
    s.sum += value;
    s.count++;
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]) {
        s.counts[i]++;
        return;
      }
    }
  }
}
