/**
 * The webhook backend: events POSTed as `audit.k8s.io/v1` `EventList`
 * batches, like kube-apiserver's `--audit-webhook-*` batch mode.
 *
 * Events wait in a bounded buffer; a batch goes out when it is full or has
 * waited `batchMaxWaitMs`. One POST is in flight at a time; a failed POST
 * (connection error, 429, 5xx) is retried with exponential back-off, then
 * dropped. When the buffer is full new events are dropped and counted —
 * a receiver that is down costs memory up to the bound, never a call.
 *
 * @module
 */

import { formatEvent, type LogSink } from "../observe/log.ts";
import { type AuditBackend, newCounters } from "./backend.ts";

/** Options of {@linkcode openWebhookBackend}. */
export interface WebhookBackendOptions {
  /** Events per POST (default 400, as kube-apiserver). */
  batchMaxSize?: number;
  /** Longest wait before a partial batch is sent (default 1000 ms). */
  batchMaxWaitMs?: number;
  /** Events buffered at most (default 10000, as kube-apiserver). */
  bufferSize?: number;
  /** First retry delay, doubled per retry (default 500 ms). */
  initialBackoffMs?: number;
  /** Cap of the retry delay (default 30 s). */
  maxBackoffMs?: number;
  /** POST attempts per batch before it is dropped (default 5). */
  maxAttempts?: number;
  /** Bound on one POST (default 10 s). */
  timeoutMs?: number;
  log: LogSink;
}

/** Opens the webhook backend for an `http(s)://` URL. */
export function openWebhookBackend(
  url: string,
  options: WebhookBackendOptions,
): AuditBackend {
  const parsed = URL.parse(url);
  if (!parsed || !["http:", "https:"].includes(parsed.protocol)) {
    throw new Error(
      `--audit-webhook-url must be an http:// or https:// URL, got ${
        JSON.stringify(url)
      }`,
    );
  }
  return new WebhookBackend(parsed, options);
}

/** The settings of a webhook backend, every default filled in. */
type Settings = Required<Omit<WebhookBackendOptions, "log">>;

function withDefaults(options: WebhookBackendOptions): Settings {
  return {
    batchMaxSize: options.batchMaxSize ?? 400,
    batchMaxWaitMs: options.batchMaxWaitMs ?? 1000,
    bufferSize: options.bufferSize ?? 10000,
    initialBackoffMs: options.initialBackoffMs ?? 500,
    maxBackoffMs: options.maxBackoffMs ?? 30_000,
    maxAttempts: options.maxAttempts ?? 5,
    timeoutMs: options.timeoutMs ?? 10_000,
  };
}

/**
 * The buffer, the batch timer and the one POST in flight. `emit` only
 * buffers and schedules; `#start` sends the batches, one POST at a time.
 */
class WebhookBackend implements AuditBackend {
  readonly counters = newCounters();
  readonly #url: URL;
  readonly #o: Settings;
  readonly #log: LogSink;
  readonly #buffer: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #sending: Promise<void> | undefined;
  #closed = false;
  #dropping = false;
  readonly #wake = { cancel: () => {} };

  constructor(url: URL, options: WebhookBackendOptions) {
    this.#url = url;
    this.#o = withDefaults(options);
    this.#log = options.log;
  }

  emit(json: string): void {
    if (this.#closed || this.#buffer.length >= this.#o.bufferSize) {
      this.counters.dropped++;
      if (!this.#dropping) {
        this.#dropping = true;
        this.#log(
          formatEvent("warn", "audit webhook buffer full; events dropped", {
            bufferSize: this.#o.bufferSize,
          }),
        );
      }
      return;
    }
    this.#dropping = false;
    this.#buffer.push(json);
    this.#schedule();
  }

  async flush(): Promise<void> {
    while (this.#buffer.length > 0 || this.#sending) {
      this.#start();
      await this.#sending;
    }
  }

  async close(): Promise<void> {
    this.#closed = true; // no retries from now on: one last attempt per batch
    this.#wake.cancel();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#sending;
    while (this.#buffer.length > 0) {
      const batch = this.#buffer.splice(0, this.#o.batchMaxSize);
      if (await this.#deliver(batch)) this.counters.written += batch.length;
      else this.counters.dropped += batch.length;
    }
  }

  #schedule(): void {
    if (this.#sending || this.#closed) return;
    if (this.#buffer.length >= this.#o.batchMaxSize) return void this.#start();
    if (this.#timer === undefined && this.#buffer.length > 0) {
      this.#timer = setTimeout(() => this.#start(), this.#o.batchMaxWaitMs);
    }
  }

  #start(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#sending || this.#buffer.length === 0) return;
    this.#sending = this.#sendAll().finally(() => {
      this.#sending = undefined;
      this.#schedule();
    });
  }

  async #sendAll(): Promise<void> {
    const buffer = this.#buffer;
    while (buffer.length > 0) {
      const batch = buffer.splice(0, this.#o.batchMaxSize);
      const ok = await this.#deliver(batch);
      if (ok) this.counters.written += batch.length;
      else this.counters.dropped += batch.length;
      if (this.#closed) return;
      if (buffer.length < this.#o.batchMaxSize) return; // wait for more (or the timer)
    }
  }

  /** POSTs one batch, retrying with back-off; false when it was dropped. */
  async #deliver(batch: string[]): Promise<boolean> {
    const o = this.#o;
    const body =
      `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[${
        batch.join(",")
      }]}`;
    let delay = o.initialBackoffMs;
    for (let attempt = 1; attempt <= o.maxAttempts; attempt++) {
      const outcome = await post(this.#url, body, o.timeoutMs);
      if (outcome === "ok") return true;
      this.counters.errors++;
      if (outcome === "fatal" || attempt === o.maxAttempts || this.#closed) {
        break;
      }
      await sleep(delay, this.#wake);
      delay = Math.min(delay * 2, o.maxBackoffMs);
    }
    this.#log(formatEvent("error", "audit webhook failed; batch dropped", {
      url: this.#url.origin + this.#url.pathname,
      events: batch.length,
    }));
    return false;
  }
}

async function post(
  url: URL,
  body: string,
  timeoutMs: number,
): Promise<"ok" | "retry" | "fatal"> {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel();
    if (response.ok) return "ok";
    return response.status === 429 || response.status >= 500
      ? "retry"
      : "fatal";
  } catch {
    return "retry";
  }
}

/** A back-off wait that `close` can cut short. */
function sleep(ms: number, wake: { cancel: () => void }): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      wake.cancel = () => {};
      resolve();
    }
    wake.cancel = done;
  });
}
