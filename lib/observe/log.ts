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

function reportOnStderr(message: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(message + "\n"));
  } catch {
    // nowhere left to say it
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
  options: {
    intervalMs?: number;
    write?: (bytes: Uint8Array) => void;
    /** Told once when writing starts failing (default: stderr). */
    report?: (message: string) => void;
  } = {},
): BatchedSink {
  const write = options.write ?? writeAll;
  const report = options.report ?? reportOnStderr;
  const intervalMs = options.intervalMs ?? 10;
  const pending = new LineBuffer();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failing = false;
  function flush(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending.lines === 0) return;
    const { chunks, lines } = pending.take();
    try {
      for (const chunk of chunks) write(chunk);
      failing = false;
    } catch (error) {
      // A closed stdout (the reader went away) must not stop the proxy:
      // the lines are lost, the calls are not.
      if (!failing) {
        report(
          `mca: cannot write the log to stdout (${
            (error as Error).message
          }); ${lines} lines dropped, and later ones until it can be written`,
        );
      }
      failing = true;
    }
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

/**
 * The JSON line of one call. One object literal of a fixed shape (absent
 * fields `undefined`, which `JSON.stringify` leaves out) instead of fields
 * added one by one, and the time formatted from a per-second prefix: this
 * runs for every call.
 */
export function formatCall(record: CallRecord, now?: Date): string {
  const { info } = record;
  const resource = info.isResourceRequest;
  return JSON.stringify({
    time: now ? now.toISOString() : isoNow(),
    level: record.status >= 500 || record.error ? "error" : "info",
    msg: "api call",
    cluster: record.cluster,
    verb: info.verb,
    method: record.method,
    path: info.path,
    apiGroup: resource ? info.apiGroup : undefined,
    apiVersion: resource ? info.apiVersion : undefined,
    namespace: resource ? info.namespace : undefined,
    resource: resource ? info.resource : undefined,
    subresource: resource ? info.subresource : undefined,
    name: resource ? info.name : undefined,
    status: record.status,
    durationMs: Math.round(record.durationMs * 1000) / 1000,
    bytesIn: record.bytesIn,
    bytesOut: record.bytesOut,
    userAgent: record.userAgent ?? "",
    upgrade: record.upgrade ? true : undefined,
    rule: record.rule || undefined,
    policyRule: record.policyRule || undefined,
    traceId: record.traceId || undefined,
    auditId: record.auditId || undefined,
    error: record.error || undefined,
  });
}

let secondStart = NaN;
let secondPrefix = "";

/** `new Date().toISOString()`, with the text up to the second made once a second. */
export function isoNow(ms = Date.now()): string {
  const second = ms - (ms % 1000);
  if (second !== secondStart) {
    secondStart = second;
    secondPrefix = new Date(second).toISOString().slice(0, 20);
  }
  const milli = ms - second;
  return `${secondPrefix}${
    milli < 10 ? `00${milli}` : milli < 100 ? `0${milli}` : milli
  }Z`;
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
