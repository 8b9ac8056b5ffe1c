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
  const o = {
    batchMaxSize: options.batchMaxSize ?? 400,
    batchMaxWaitMs: options.batchMaxWaitMs ?? 1000,
    bufferSize: options.bufferSize ?? 10000,
    initialBackoffMs: options.initialBackoffMs ?? 500,
    maxBackoffMs: options.maxBackoffMs ?? 30_000,
    maxAttempts: options.maxAttempts ?? 5,
    timeoutMs: options.timeoutMs ?? 10_000,
  };
  const counters = newCounters();
  const buffer: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let sending: Promise<void> | undefined;
  let closed = false;
  let dropping = false;
  const wake = { cancel: () => {} };

  function schedule(): void {
    if (sending || closed) return;
    if (buffer.length >= o.batchMaxSize) return void start();
    if (timer === undefined && buffer.length > 0) {
      timer = setTimeout(start, o.batchMaxWaitMs);
    }
  }
  function start(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (sending || buffer.length === 0) return;
    sending = sendAll().finally(() => {
      sending = undefined;
      schedule();
    });
  }
  async function sendAll(): Promise<void> {
    while (buffer.length > 0) {
      const batch = buffer.splice(0, o.batchMaxSize);
      const ok = await deliver(batch);
      if (ok) counters.written += batch.length;
      else counters.dropped += batch.length;
      if (closed) return;
      if (buffer.length < o.batchMaxSize) return; // wait for more (or the timer)
    }
  }
  async function deliver(batch: string[]): Promise<boolean> {
    const body =
      `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[${
        batch.join(",")
      }]}`;
    let delay = o.initialBackoffMs;
    for (let attempt = 1; attempt <= o.maxAttempts; attempt++) {
      const outcome = await post(parsed!, body, o.timeoutMs);
      if (outcome === "ok") return true;
      counters.errors++;
      if (outcome === "fatal" || attempt === o.maxAttempts || closed) break;
      await sleep(delay, wake);
      delay = Math.min(delay * 2, o.maxBackoffMs);
    }
    options.log(formatEvent("error", "audit webhook failed; batch dropped", {
      url: parsed!.origin + parsed!.pathname,
      events: batch.length,
    }));
    return false;
  }
  return {
    counters,
    emit(json) {
      if (closed || buffer.length >= o.bufferSize) {
        counters.dropped++;
        if (!dropping) {
          dropping = true;
          options.log(
            formatEvent("warn", "audit webhook buffer full; events dropped", {
              bufferSize: o.bufferSize,
            }),
          );
        }
        return;
      }
      dropping = false;
      buffer.push(json);
      schedule();
    },
    async flush() {
      while (buffer.length > 0 || sending) {
        start();
        await sending;
      }
    },
    async close() {
      closed = true; // no retries from now on: one last attempt per batch
      wake.cancel();
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await sending;
      while (buffer.length > 0) {
        const batch = buffer.splice(0, o.batchMaxSize);
        if (await deliver(batch)) counters.written += batch.length;
        else counters.dropped += batch.length;
      }
    },
  };
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
