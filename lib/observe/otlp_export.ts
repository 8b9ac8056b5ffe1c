/**
 * A small OTLP/HTTP JSON span exporter: spans queue in memory and are
 * POSTed in batches, so a call never waits for the collector. A collector
 * that is down costs dropped spans (bounded queue), never a slow call.
 *
 * @module
 */

/** An attribute value as MCA records it. */
export type AttrValue = string | number | boolean;

/** One finished span, ready to export. */
export interface FinishedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** OTLP SpanKind: 2 = SERVER, 3 = CLIENT. */
  kind: 2 | 3;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, AttrValue>;
  /** 2 = ERROR; absent = UNSET. */
  statusCode?: 2;
  statusMessage?: string;
}

/** Where and how to export. */
export interface ExporterOptions {
  url: string;
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
    close: flush,
  };
}

async function post(options: ExporterOptions, spans: FinishedSpan[]) {
  try {
    const res = await fetch(options.url, {
      method: "POST",
      headers: { ...options.headers, "content-type": "application/json" },
      body: JSON.stringify(encode(options.resource, spans)),
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

/** The OTLP JSON `ExportTraceServiceRequest` body for `spans`. */
export function encode(
  resource: Record<string, AttrValue>,
  spans: FinishedSpan[],
): unknown {
  return {
    resourceSpans: [{
      resource: { attributes: attributes(resource) },
      scopeSpans: [{
        scope: { name: "mca" },
        spans: spans.map((s) => ({
          traceId: s.traceId,
          spanId: s.spanId,
          ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
          name: s.name,
          kind: s.kind,
          startTimeUnixNano: s.startNs.toString(),
          endTimeUnixNano: s.endNs.toString(),
          attributes: attributes(s.attributes),
          status: s.statusCode
            ? { code: s.statusCode, message: s.statusMessage ?? "" }
            : {},
        })),
      }],
    }],
  };
}

function attributes(attrs: Record<string, AttrValue>) {
  return Object.entries(attrs).map(([key, v]) => ({ key, value: value(v) }));
}

function value(v: AttrValue) {
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
}
