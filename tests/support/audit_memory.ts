/**
 * An audit backend keeping every event in memory, for tests that read what
 * an observer emitted.
 *
 * @module
 */

import { type AuditBackend, newCounters } from "../../lib/audit/backend.ts";

/** A backend whose `lines` are the serialised events emitted, in order. */
export function memoryBackend(): AuditBackend & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    counters: newCounters(),
    emit: (json) => void lines.push(json),
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}
