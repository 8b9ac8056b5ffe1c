/**
 * Where audit events go. A backend takes each event already serialised (one
 * JSON text), so an event is frozen the moment it is emitted and several
 * backends share one `JSON.stringify`. `emit` never blocks and never
 * throws: a full buffer or a broken sink drops the event and counts it.
 *
 * @module
 */

/** Counters an operator (and the metrics endpoint) can read. */
export interface AuditCounters {
  /** Events handed to the sink successfully. */
  written: number;
  /** Events lost: buffer full, sink failing, retries exhausted. */
  dropped: number;
  /** Failed writes / POSTs (each retry counts). */
  errors: number;
}

/** One audit sink: a log file, stdout, a webhook. */
export interface AuditBackend {
  /** Queues one serialised `Event`; never blocks, never throws. */
  emit(json: string): void;
  /** Resolves once what was queued before the call is written or dropped. */
  flush(): Promise<void>;
  /** Flushes (bounded in time) and releases files, timers, connections. */
  close(): Promise<void>;
  readonly counters: AuditCounters;
}

/** Fresh zeroed counters. */
export function newCounters(): AuditCounters {
  return { written: 0, dropped: 0, errors: 0 };
}

/** Sends every event to each backend; counters are summed. */
export function combineBackends(backends: AuditBackend[]): AuditBackend {
  if (backends.length === 1) return backends[0];
  return {
    emit(json) {
      for (const b of backends) b.emit(json);
    },
    async flush() {
      await Promise.all(backends.map((b) => b.flush()));
    },
    async close() {
      await Promise.all(backends.map((b) => b.close()));
    },
    get counters() {
      const sum = newCounters();
      for (const b of backends) {
        sum.written += b.counters.written;
        sum.dropped += b.counters.dropped;
        sum.errors += b.counters.errors;
      }
      return sum;
    },
  };
}
