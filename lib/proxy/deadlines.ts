/**
 * Deadlines that share one timer per duration.
 *
 * Every proxied call armed and cleared two timers: the wait for the
 * upstream's response head, and the wait for the app's next request on its
 * kept-alive connection. Under Deno's Node compatibility each is a
 * `Timeout` object and a runtime timer, and profiles put the pair at several
 * µs per call, more than a third of the listener's own work. Deadlines of
 * one duration expire in the order they were set, so one interval per
 * duration, expiring the due ones from the front of an insertion-ordered
 * `Set`, does the same job for two `Set` operations per deadline. A deadline
 * fires up to a tenth of its duration late (never more than 1 s): these
 * bound stuck peers, they do not schedule work.
 *
 * @example
 * ```ts
 * const d = deadline(70_000, () => request.destroy());
 * request.once("response", () => d.cancel());
 * ```
 *
 * @module
 */

/** A pending deadline. */
export interface Deadline {
  /** Stops it from firing; harmless after it fired. */
  cancel(): void;
}

interface Entry {
  at: number;
  expire: () => void;
}

interface Wheel {
  entries: Set<Entry>;
  timer: ReturnType<typeof setInterval>;
}

const wheels = new Map<number, Wheel>();

/** How often the deadlines of `ms` are looked at. */
export function tickOf(ms: number): number {
  return Math.min(1000, Math.max(5, Math.ceil(ms / 10)));
}

/** Calls `expire` once, `ms` (plus at most one tick) from now. */
export function deadline(ms: number, expire: () => void): Deadline {
  const entries = (wheels.get(ms) ?? wheelOf(ms)).entries;
  const entry: Entry = { at: performance.now() + ms, expire };
  entries.add(entry);
  return { cancel: () => void entries.delete(entry) };
}

function wheelOf(ms: number): Wheel {
  const entries = new Set<Entry>();
  const timer = setInterval(() => sweep(ms, entries), tickOf(ms));
  // a pending deadline never keeps the process alive
  (timer as { unref?: () => void }).unref?.();
  const wheel = { entries, timer };
  wheels.set(ms, wheel);
  return wheel;
}

function sweep(ms: number, entries: Set<Entry>): void {
  const now = performance.now();
  for (const entry of entries) {
    if (entry.at > now) break;
    entries.delete(entry);
    try {
      entry.expire();
    } catch {
      // one failing callback must not keep the others from expiring
    }
  }
  if (entries.size === 0) {
    const wheel = wheels.get(ms);
    if (wheel?.entries === entries) {
      clearInterval(wheel.timer);
      wheels.delete(ms);
    }
  }
}
