/**
 * The audit log from the sidecar's flags: reads and validates the policy
 * (a bad file stops the start with `file:line`), opens the backends and
 * returns the observer plus the counters the metrics endpoint exports.
 *
 * @module
 */

import type { LogSink } from "../observe/log.ts";
import type { Observer } from "../observe/observer.ts";
import {
  type AuditBackend,
  type AuditCounters,
  combineBackends,
} from "./backend.ts";
import { openLogBackend } from "./log_backend.ts";
import { auditObserver } from "./observer.ts";
import { parseAuditPolicy } from "./policy.ts";
import { openWebhookBackend } from "./webhook_backend.ts";

/** The audit flags. */
export interface AuditOptions {
  /** `--audit-policy`: an `audit.k8s.io/v1` `Policy` file. */
  policyFile?: string;
  /** `--audit-log`: a file, or `-` for stdout. */
  logPath?: string;
  /** `--audit-log-maxsize` in MiB (default 100). */
  logMaxSizeMB?: number;
  /** `--audit-log-maxbackup` (default 3; 0 keeps all). */
  logMaxBackups?: number;
  /** `--audit-webhook-url`. */
  webhookUrl?: string;
  /** `--audit-webhook-batch-max-wait-ms` (default 1000). */
  webhookBatchMaxWaitMs?: number;
}

/** The audit log, running. */
export interface Audit {
  observer: Observer;
  /** Written / dropped / errors, summed over the backends (for metrics). */
  counters(): AuditCounters;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the audit log, or returns undefined when no audit flag is set.
 * Throws a message naming the file and line for a bad policy, and a clear
 * message for inconsistent flags.
 */
export async function openAudit(
  options: AuditOptions,
  ctx: { log: LogSink },
): Promise<Audit | undefined> {
  const { policyFile, logPath, webhookUrl } = options;
  if (!policyFile && !logPath && !webhookUrl) return undefined;
  if (!policyFile) {
    throw new Error(
      "--audit-log and --audit-webhook-url need --audit-policy FILE (an audit.k8s.io/v1 Policy saying what to record)",
    );
  }
  if (!logPath && !webhookUrl) {
    throw new Error(
      "--audit-policy needs a backend: --audit-log PATH (or - for stdout) and/or --audit-webhook-url URL",
    );
  }
  let text: string;
  try {
    text = await Deno.readTextFile(policyFile);
  } catch (error) {
    throw new Error(
      `cannot read --audit-policy ${policyFile}: ${(error as Error).message}`,
    );
  }
  const policy = parseAuditPolicy(text, { file: policyFile });
  const backends: AuditBackend[] = [];
  if (webhookUrl) {
    backends.push(openWebhookBackend(webhookUrl, {
      log: ctx.log,
      batchMaxWaitMs: options.webhookBatchMaxWaitMs,
    }));
  }
  if (logPath) {
    backends.push(openLogBackend(logPath, {
      log: ctx.log,
      maxSizeBytes: options.logMaxSizeMB !== undefined
        ? options.logMaxSizeMB * (1 << 20)
        : undefined,
      maxBackups: options.logMaxBackups,
    }));
  }
  const backend = combineBackends(backends);
  return {
    observer: auditObserver(policy, backend),
    counters: () => backend.counters,
    flush: () => backend.flush(),
    close: () => backend.close(),
  };
}
