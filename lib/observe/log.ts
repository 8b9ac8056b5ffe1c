/**
 * Structured log lines: one JSON object per line on stdout.
 *
 * Every API call gets one line saying who asked what of which cluster and
 * how it went, so a Pod's API usage can be inspected with `kubectl logs` and
 * any JSON log pipeline. Only the fields named here are written: request
 * headers (and with them every token) never reach a log line.
 *
 * @module
 */

import type { RequestInfo } from "../kube/request_info.ts";
import type { Observer } from "./observer.ts";
import { LineBuffer } from "./line_buffer.ts";

/** One proxied call, as logged. */
export interface CallRecord {
  info: RequestInfo;
  method: string;
  cluster: string;
  status: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  userAgent?: string;
  upgrade?: boolean;
  error?: string;
  /** Routing rule that decided, when one matched. */
  rule?: string;
  /** The policy rule that refused the call (never sent to the app). */
  policyRule?: string;
  /** The call's trace id, when tracing is on. */
  traceId?: string;
  /** The upstream's `Audit-Id`, to join with its audit log. */
  auditId?: string;
}

/** Where lines go; stdout unless a test captures them. */
export type LogSink = (line: string) => void;

const encoder = new TextEncoder();

function writeAll(bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) {
    written += Deno.stdout.writeSync(bytes.subarray(written));
  }
}

/** Writes a line to stdout synchronously, so lines never interleave. */
export function stdoutSink(line: string): void {
  writeAll(encoder.encode(line + "\n"));
}

/** A sink that batches lines; `flush` writes what is pending at once. */
export interface BatchedSink {
  log: LogSink;
  flush(): void;
}

/**
 * Collects lines and writes them in one system call at most every
 * `intervalMs` (10 ms by default). One write per API call was the largest
 * cost of MCA's own code under load (benchmark profiles); a log line up to
 * 10 ms late costs nothing. Lines wait as bytes ({@linkcode LineBuffer});
 * `write` must be done with the bytes when it returns (they are reused).
 * Call `flush` before exiting.
 */
export function batchedStdoutSink(
  options: { intervalMs?: number; write?: (bytes: Uint8Array) => void } = {},
): BatchedSink {
  const write = options.write ?? writeAll;
  const intervalMs = options.intervalMs ?? 10;
  const pending = new LineBuffer();
  let timer: ReturnType<typeof setTimeout> | undefined;
  function flush(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending.lines === 0) return;
    const { chunks } = pending.take();
    for (const chunk of chunks) write(chunk);
    pending.recycle(chunks);
  }
  return {
    log(line: string): void {
      pending.push(line);
      if (timer === undefined) timer = setTimeout(flush, intervalMs);
    },
    flush,
  };
}

/** The JSON line of one call. */
export function formatCall(record: CallRecord, now = new Date()): string {
  const { info } = record;
  const line: Record<string, unknown> = {
    time: now.toISOString(),
    level: record.status >= 500 || record.error ? "error" : "info",
    msg: "api call",
    cluster: record.cluster,
    verb: info.verb,
    method: record.method,
    path: info.path,
  };
  if (info.isResourceRequest) {
    line.apiGroup = info.apiGroup;
    line.apiVersion = info.apiVersion;
    line.namespace = info.namespace;
    line.resource = info.resource;
    line.subresource = info.subresource;
    line.name = info.name;
  }
  line.status = record.status;
  line.durationMs = Math.round(record.durationMs * 1000) / 1000;
  line.bytesIn = record.bytesIn;
  line.bytesOut = record.bytesOut;
  line.userAgent = record.userAgent ?? "";
  if (record.upgrade) line.upgrade = true;
  if (record.rule) line.rule = record.rule;
  if (record.policyRule) line.policyRule = record.policyRule;
  if (record.traceId) line.traceId = record.traceId;
  if (record.auditId) line.auditId = record.auditId;
  if (record.error) line.error = record.error;
  return JSON.stringify(line);
}

/** A start-up, shutdown or failure event. */
export function formatEvent(
  level: "info" | "warn" | "error",
  msg: string,
  fields: Record<string, unknown> = {},
  now = new Date(),
): string {
  return JSON.stringify({ time: now.toISOString(), level, msg, ...fields });
}

/**
 * The log line as an observer: one line per call when it ends, with what
 * the decision and the first upstream answer said.
 */
export function logObserver(sink: LogSink): Observer {
  return {
    start(call) {
      let rule: string | undefined;
      let policyRule: string | undefined;
      let auditId: string | undefined;
      return {
        decided(decision) {
          rule = decision.rule;
          const refusing = Object.values(decision.policy ?? {}).find((v) =>
            !v.allowed
          );
          // a refusal by isolation or the default names that, as audit does
          policyRule = refusing?.rule ?? refusing?.basis;
        },
        upstream() {
          return {
            response(answer) {
              auditId ??= answer.auditId;
            },
            failed() {},
          };
        },
        end(end) {
          sink(formatCall({
            info: call.info,
            method: call.method,
            cluster: end.cluster,
            status: end.status,
            durationMs: end.durationMs,
            bytesIn: end.bytesIn,
            bytesOut: end.bytesOut,
            userAgent: call.userAgent,
            upgrade: call.upgrade || undefined,
            error: end.error,
            rule,
            policyRule,
            traceId: end.traceId,
            auditId: end.auditId ?? auditId,
          }));
        },
      };
    },
  };
}
