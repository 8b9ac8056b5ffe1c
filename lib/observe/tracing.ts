/**
 * OpenTelemetry traces of every call, as an {@linkcode Observer}: one SERVER
 * span per call and one CLIENT span per upstream request (one per cluster of
 * a fan-out), continuing the app's W3C trace context and handing it on to
 * the API server as exactly one `traceparent` (see ADR 0019).
 *
 * Off unless the standard OpenTelemetry variables name an exporter: then
 * {@linkcode tracingFromEnv} returns `undefined`, no observer is installed
 * and the app's `traceparent` passes through untouched.
 *
 * @module
 */

import type {
  CallDecision,
  CallEnd,
  CallObservation,
  CallStart,
  Observer,
  UpstreamObservation,
  UpstreamStart,
} from "./observer.ts";
import type { AttrValue, FinishedSpan } from "./otlp_encode.ts";
import { type SpanExporter, startExporter } from "./otlp_export.ts";
import { exportUrl, parseList, resourceFromEnv } from "./otel_env.ts";
import { grpcSender, grpcTarget } from "./otlp_grpc.ts";
import {
  formatTraceparent,
  parseTraceparent,
  randomId,
  type Sampler,
  samplerFromEnv,
} from "./trace_context.ts";

/** The tracer: an observer plus its exporter's lifecycle. */
export interface Tracing {
  observer: Observer;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Options for {@linkcode startTracing}. */
export interface TracingOptions {
  sampler: Sampler;
  exporter: SpanExporter;
}

/** A warning or error for the operator's log. */
export type Warn = (message: string) => void;

/**
 * The tracer the environment asks for, or `undefined` when tracing is off:
 * no `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`, `OTEL_TRACES_EXPORTER=none` or
 * `OTEL_SDK_DISABLED=true`. Throws on a bad sampler, protocol or gRPC
 * endpoint (a startup error the operator must fix).
 */
export function tracingFromEnv(
  env: Record<string, string | undefined>,
  warn: Warn,
): Tracing | undefined {
  const url = exportUrl(env);
  if (url === undefined) return undefined;
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return undefined;
  const exporters = env.OTEL_TRACES_EXPORTER?.trim() || "otlp";
  if (exporters === "none") return undefined;
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ??
    env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf").trim();
  if (!["grpc", "http/json", "http/protobuf"].includes(protocol)) {
    throw new Error(
      `OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not known; use grpc, http/protobuf or http/json`,
    );
  }
  const sampler = samplerFromEnv(
    env.OTEL_TRACES_SAMPLER,
    env.OTEL_TRACES_SAMPLER_ARG,
  );
  const headers = parseList(
    env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ?? env.OTEL_EXPORTER_OTLP_HEADERS,
  );
  const exporter = startExporter({
    url: protocol === "grpc" ? grpcEndpoint(env) : url,
    encoding: protocol === "http/json" ? "json" : "protobuf",
    headers,
    send: protocol === "grpc" ? grpcSend(env, headers) : undefined,
    resource: resourceFromEnv(env),
    onError: warn,
  });
  return startTracing({ sampler, exporter });
}

/** For gRPC the endpoint variable is used as given (no `/v1/traces`). */
function grpcEndpoint(env: Record<string, string | undefined>): string {
  return (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() ||
    env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim())!;
}

function grpcSend(
  env: Record<string, string | undefined>,
  headers: Record<string, string>,
) {
  const insecure = env.OTEL_EXPORTER_OTLP_TRACES_INSECURE ??
    env.OTEL_EXPORTER_OTLP_INSECURE;
  return grpcSender(grpcTarget(grpcEndpoint(env), insecure), { headers });
}

/** A tracer with an explicit sampler and exporter (tests, bench). */
export function startTracing(options: TracingOptions): Tracing {
  return {
    observer: { start: (call) => observeCall(call, options) },
    flush: () => options.exporter.flush(),
    close: () => options.exporter.close(),
  };
}

function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

/** What every span of one call shares. */
interface CallTrace {
  traceId: string;
  /** The SERVER span's id: the parent of every CLIENT span of the call. */
  spanId: string;
  sampled: boolean;
  /**
   * The app's tracestate, handed on only with a valid traceparent: W3C Trace
   * Context §3.3.1, tracestate means nothing without one, so a call that
   * starts a new trace sends none upstream.
   */
  tracestate?: string;
  exporter: SpanExporter;
  /** The first upstream `Audit-Id` (the pipeline's CallEnd may lack it). */
  auditId?: string;
}

function observeCall(
  call: CallStart,
  options: TracingOptions,
): CallObservation {
  const parent = parseTraceparent(call.traceparent);
  const traceId = parent?.traceId ?? randomId(16);
  const trace: CallTrace = {
    traceId,
    sampled: options.sampler(traceId, parent),
    spanId: randomId(8),
    tracestate: parent ? call.tracestate : undefined,
    exporter: options.exporter,
  };
  if (!trace.sampled) {
    // still propagated (flag 00), but no clock, attributes or span: at 1 %
    // sampling this is nearly every call
    return {
      upstream: (up) => clientSpan(up, trace),
      end() {},
      traceId: () => traceId,
    };
  }
  const startNs = nowNs();
  const attrs = requestAttributes(call);
  return {
    decided: (decision) => addDecision(attrs, decision),
    upstream: (up) => clientSpan(up, trace),
    end(end) {
      trace.exporter.add(serverSpan(end, {
        call,
        trace,
        parentSpanId: parent?.spanId,
        startNs,
        attrs,
      }));
    },
    traceId: () => traceId,
  };
}

/** The SERVER span's attributes known when the call is accepted. */
function requestAttributes(call: CallStart): Record<string, AttrValue> {
  const info = call.info;
  const attrs: Record<string, AttrValue> = {
    "http.request.method": call.method,
    "url.path": info.path,
    "k8s.verb": info.verb,
  };
  if (info.resource) attrs["k8s.resource"] = info.resource;
  if (info.subresource) attrs["k8s.subresource"] = info.subresource;
  if (info.namespace) attrs["k8s.namespace.name"] = info.namespace;
  if (info.name) attrs["k8s.name"] = info.name;
  return attrs;
}

/** Where routing and policy sent the call, as SERVER span attributes. */
function addDecision(
  attrs: Record<string, AttrValue>,
  decision: CallDecision,
): void {
  attrs["mca.plan"] = decision.plan;
  attrs["mca.cluster"] = decision.clusters.join("+") || "none";
  if (decision.rule) attrs["mca.rule"] = decision.rule;
  if (decision.missing.length) {
    attrs["mca.missing"] = decision.missing.join(",");
  }
}

/**
 * One upstream request: the `traceparent` (and `tracestate`) it carries, and
 * its CLIENT span, exported when it answers or fails (sampled calls only).
 */
function clientSpan(up: UpstreamStart, trace: CallTrace): UpstreamObservation {
  const { traceId, sampled } = trace;
  const clientId = randomId(8);
  const headers: Record<string, string> = {
    traceparent: formatTraceparent({ traceId, spanId: clientId, sampled }),
  };
  if (trace.tracestate) headers.tracestate = trace.tracestate;
  if (!sampled) return { headers, response() {}, failed() {} };
  const clientStart = nowNs();
  const client: FinishedSpan = {
    traceId,
    spanId: clientId,
    parentSpanId: trace.spanId,
    name: `${up.method} ${up.cluster}`,
    kind: 3,
    startNs: clientStart,
    endNs: clientStart,
    attributes: {
      "http.request.method": up.method,
      "server.address": up.cluster,
      "mca.cluster": up.cluster,
    },
  };
  return {
    headers,
    response(answer) {
      client.endNs = nowNs();
      client.attributes["http.response.status_code"] = answer.status;
      if (answer.auditId) {
        client.attributes["k8s.audit_id"] = answer.auditId;
        trace.auditId ??= answer.auditId;
      }
      if (answer.status >= 500) client.statusCode = 2;
      trace.exporter.add(client);
    },
    failed(reason) {
      client.endNs = nowNs();
      client.attributes["error.type"] = reason;
      client.statusCode = 2;
      client.statusMessage = reason;
      trace.exporter.add(client);
    },
  };
}

/** The call's SERVER span, complete once the call has ended. */
function serverSpan(
  end: CallEnd,
  span: {
    call: CallStart;
    trace: CallTrace;
    parentSpanId?: string;
    startNs: bigint;
    attrs: Record<string, AttrValue>;
  },
): FinishedSpan {
  const { call, attrs } = span;
  attrs["http.response.status_code"] = end.status;
  const auditId = end.auditId ?? span.trace.auditId;
  if (auditId) attrs["k8s.audit_id"] = auditId;
  attrs["mca.cluster"] ??= end.cluster;
  const failed = end.status >= 500 || end.status === 0;
  return {
    traceId: span.trace.traceId,
    spanId: span.trace.spanId,
    parentSpanId: span.parentSpanId,
    name: `${call.method} ${call.info.resource || call.info.path}`,
    kind: 2,
    startNs: span.startNs,
    endNs: nowNs(),
    attributes: attrs,
    ...(failed
      ? { statusCode: 2 as const, statusMessage: end.error ?? "" }
      : {}),
  };
}
