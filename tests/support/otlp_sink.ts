/**
 * A real OTLP receiver for the tracing tests: `otlp-sink`, the OpenTelemetry
 * Collector's own `otlpreceiver` (gRPC, and HTTP with protobuf or JSON
 * bodies) built from the wrapper module in `tests/e2e/toolchain/otel/` by
 * `build_otel.sh` and cached under `~/.cache/mca/bin/otel-<version>-<hash>/`.
 * It appends every trace batch it accepts to a file as one OTLP JSON line;
 * {@linkcode OtlpSink.spans} reads them back, flattened.
 *
 * ```ts
 * const sink = await startOtlpSink({ dir: "tmp/my-test" });
 * try {
 *   // OTEL_EXPORTER_OTLP_ENDPOINT = sink.httpUrl; kube-apiserver: sink.grpcEndpoint
 *   const spans = await sink.waitFor("my span", (all) => all.filter(...));
 * } finally {
 *   await sink.stop();
 * }
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { builtPath } from "./toolchain.ts";

/** One span as the receiver decoded it, with its resource's service name. */
export interface ReceivedSpan {
  /** The resource's `service.name` (`mca`, `apiserver`...). */
  service: string;
  traceId: string;
  spanId: string;
  /** `""` for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  links: { traceId: string; spanId: string }[];
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
}

/** A running receiver. */
export interface OtlpSink {
  /** `host:port` of OTLP/gRPC (what kube-apiserver's TracingConfiguration takes). */
  readonly grpcEndpoint: string;
  /** `http://host:port` of OTLP/HTTP (an `OTEL_EXPORTER_OTLP_ENDPOINT`). */
  readonly httpUrl: string;
  readonly pid: number;
  /** The file the receiver appends to. */
  readonly file: string;
  /** Every span received so far. */
  spans(): Promise<ReceivedSpan[]>;
  /**
   * Polls {@linkcode spans} until `pick` returns a non-empty result, or
   * throws after `timeoutMs` (default 30 s) naming `what`.
   */
  waitFor<T>(
    what: string,
    pick: (spans: ReceivedSpan[]) => T | undefined,
    timeoutMs?: number,
  ): Promise<T>;
  /** SIGTERM to {@linkcode pid}, SIGKILL after 5 s; resolves once it exited. */
  stop(): Promise<void>;
}

/**
 * The path of `otlp-sink`, built first when it is not cached (cold: ~1 min
 * on 2 cores plus module downloads; warm: milliseconds). Memoised per
 * process; a failed build is retried on the next call.
 */
export function ensureOtlpSink(): Promise<string> {
  return builtPath("build_otel.sh", "otlp-sink");
}

/**
 * Starts the receiver on two free loopback ports, writing to
 * `<dir>/otlp-received.jsonl`, and resolves once it says `ready`. A port
 * taken between picking and binding is retried on new ports (3 attempts).
 */
export async function startOtlpSink(
  options: { dir: string; timeoutMs?: number },
): Promise<OtlpSink> {
  const bin = await ensureOtlpSink();
  await Deno.mkdir(options.dir, { recursive: true });
  const file = join(options.dir, "otlp-received.jsonl");
  for (let attempt = 1;; attempt++) {
    const [grpc, http] = freeLoopbackPorts(2);
    const child = new Deno.Command(bin, {
      args: [
        `-grpc=127.0.0.1:${grpc}`,
        `-http=127.0.0.1:${http}`,
        `-out=${file}`,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = drain(child.stdout);
    const err = drain(child.stderr);
    const drained = Promise.all([out.all, err.all]);
    const sink = running({ child, grpc, http, file, drained });
    const ok = await bounded(out.ready, options.timeoutMs ?? 15_000);
    if (ok) return sink;
    await sink.stop();
    const stderr = await err.all;
    await Deno.writeTextFile(
      join(options.dir, `otlp-sink.${attempt}.log`),
      stderr,
    );
    if (attempt < 3 && /address already in use/.test(stderr)) continue;
    throw new Error(`otlp-sink did not start: ${stderr.slice(-2000)}`);
  }
}

/** Resolves with `p`'s value, or false after `ms`. */
async function bounded(p: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reads a child's stream to its end (so no pipe is left open): `ready`
 * resolves true at the line `ready`, false if the stream ends first.
 */
function drain(stream: ReadableStream<Uint8Array>) {
  const { promise: ready, resolve } = Promise.withResolvers<boolean>();
  const all = (async () => {
    let text = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (/^ready$/m.test(text)) resolve(true);
    }
    resolve(false);
    return text;
  })();
  return { ready, all };
}

function running(
  parts: {
    child: Deno.ChildProcess;
    grpc: number;
    http: number;
    file: string;
    drained: Promise<unknown>;
  },
): OtlpSink {
  const { child, file } = parts;
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const spans = () => readSpans(file);
  return {
    grpcEndpoint: `127.0.0.1:${parts.grpc}`,
    httpUrl: `http://127.0.0.1:${parts.http}`,
    pid: child.pid,
    file,
    spans,
    async waitFor(what, pick, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (true) {
        const got = pick(await spans());
        if (got !== undefined && (!Array.isArray(got) || got.length > 0)) {
          return got;
        }
        if (exited) throw new Error(`otlp-sink exited waiting for ${what}`);
        if (Date.now() > deadline) {
          throw new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      if (!exited) {
        kill(child.pid, "SIGTERM");
        const timer = setTimeout(() => kill(child.pid, "SIGKILL"), 5_000);
        await status;
        clearTimeout(timer);
      }
      await parts.drained;
    },
  };
}

/** Signals our own child by its PID; it may have exited already. */
function kill(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch { /* already gone */ }
}

/** The spans of every OTLP JSON line in `file`, flattened. */
export async function readSpans(file: string): Promise<ReceivedSpan[]> {
  const text = await Deno.readTextFile(file).catch(() => "");
  const out: ReceivedSpan[] = [];
  for (const line of text.split("\n")) {
    // the receiver writes whole lines; a half-written last line waits
    if (!line.trim()) continue;
    let batch;
    try {
      batch = JSON.parse(line);
    } catch {
      continue;
    }
    for (const rs of batch.resourceSpans ?? []) {
      const service = String(attrs(rs.resource?.attributes)["service.name"]);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) out.push(flatten(service, s));
      }
    }
  }
  return out;
}

// deno-lint-ignore no-explicit-any
function flatten(service: string, s: any): ReceivedSpan {
  return {
    service,
    traceId: s.traceId ?? "",
    spanId: s.spanId ?? "",
    parentSpanId: s.parentSpanId ?? "",
    name: s.name ?? "",
    kind: s.kind ?? 0,
    attributes: attrs(s.attributes),
    // deno-lint-ignore no-explicit-any
    links: (s.links ?? []).map((l: any) => ({
      traceId: l.traceId,
      spanId: l.spanId,
    })),
    statusCode: s.status?.code ?? 0,
  };
}

function attrs(
  // deno-lint-ignore no-explicit-any
  list: any[] | undefined,
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    if (value?.stringValue !== undefined) out[key] = value.stringValue;
    else if (value?.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value?.doubleValue !== undefined) out[key] = value.doubleValue;
    else if (value?.boolValue !== undefined) out[key] = value.boolValue;
  }
  return out;
}

function freeLoopbackPorts(count: number): number[] {
  const listeners: Deno.TcpListener[] = [];
  try {
    for (let i = 0; i < count; i++) {
      listeners.push(Deno.listen({ hostname: "127.0.0.1", port: 0 }));
    }
    return listeners.map((l) => l.addr.port);
  } finally {
    for (const l of listeners) l.close();
  }
}
