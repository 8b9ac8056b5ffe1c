/**
 * A small OTLP/HTTP span exporter: spans queue in memory and are POSTed in
 * batches, so a call never waits for the collector. A collector that is
 * down costs dropped spans (bounded queue), never a slow call. The body is
 * protobuf (`http/protobuf`, the OpenTelemetry default) or JSON
 * (`http/json`), encoded by `otlp_encode.ts`, with the matching content type;
 * for OTLP/gRPC the protobuf body goes to `options.send` instead.
 *
 * @module
 */

import {
  type AttrValue,
  encodeJson,
  encodeProtobuf,
  type FinishedSpan,
} from "./otlp_encode.ts";

/** Where and how to export. */
export interface ExporterOptions {
  /** The OTLP/HTTP URL, or the endpoint named in messages for `send`. */
  url: string;
  /**
   * Sends a protobuf body another way than an HTTP POST (OTLP/gRPC,
   * `otlp_grpc.ts`); rejects with the reason.
   */
  send?: ((body: Uint8Array) => Promise<void>) & { close?(): void };
  /** The body's encoding (default `protobuf`, as `http/protobuf`). */
  encoding?: "protobuf" | "json";
  headers?: Record<string, string>;
  resource: Record<string, AttrValue>;
  /** Flush period in ms (default 1000). */
  intervalMs?: number;
  /** Spans kept while the collector is slow (default 4096). */
  maxQueue?: number;
  /** Called once per failed export, with a message for the log. */
  onError?: (message: string) => void;
}

/** Queues spans and exports them in batches. */
export interface SpanExporter {
  add(span: FinishedSpan): void;
  /** Sends what is queued now (tests, shutdown). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Starts an exporter that flushes every `intervalMs` while it has spans. */
export function startExporter(options: ExporterOptions): SpanExporter {
  const maxQueue = options.maxQueue ?? 4096;
  let queue: FinishedSpan[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inflight: Promise<void> = Promise.resolve();
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return inflight;
    inflight = inflight.then(() => post(options, batch));
    return inflight;
  };
  return {
    add(span) {
      if (queue.length >= maxQueue) return;
      queue.push(span);
      if (queue.length >= 512) void flush();
      else if (timer === undefined) {
        timer = setTimeout(() => void flush(), options.intervalMs ?? 1000);
      }
    },
    flush,
    close: async () => {
      await flush();
      options.send?.close?.();
    },
  };
}

async function post(options: ExporterOptions, spans: FinishedSpan[]) {
  if (options.send) return await sendOther(options, options.send, spans);
  try {
    const json = options.encoding === "json";
    const res = await fetch(options.url, {
      method: "POST",
      headers: {
        ...options.headers,
        "content-type": json ? "application/json" : "application/x-protobuf",
      },
      body: json
        ? JSON.stringify(encodeJson(options.resource, spans))
        : encodeProtobuf(options.resource, spans),
      signal: AbortSignal.timeout(10_000),
    });
    await res.body?.cancel();
    if (!res.ok) {
      options.onError?.(`OTLP export to ${options.url}: HTTP ${res.status}`);
    }
  } catch (e) {
    options.onError?.(
      `OTLP export to ${options.url} failed: ${(e as Error).message}`,
    );
  }
}

async function sendOther(
  options: ExporterOptions,
  send: (body: Uint8Array) => Promise<void>,
  spans: FinishedSpan[],
) {
  try {
    await send(encodeProtobuf(options.resource, spans));
  } catch (e) {
    options.onError?.(
      `OTLP export to ${options.url} failed: ${(e as Error).message}`,
    );
  }
}
