/**
 * Counter values kept in a plain `Map` and handed to prom-client only when
 * scraped. prom-client hashes and validates the label set on every `inc`
 * (about 1–2 µs); calls are counted on the hot path, scrapes come every few
 * seconds, so the work moves to the scrape.
 *
 * @module
 */

import {
  Counter,
  type OpenMetricsContentType,
  type Registry,
} from "prom-client";

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
      registers: (Registry | Registry<OpenMetricsContentType>)[];
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
    const labels: Record<string, string> = {};
    this.#names.forEach((n, i) => labels[n] = values[i]);
    this.#entries.set(key, { labels, value });
  }
}
