/**
 * An abortable wait, for the back-off between a cluster's failed watch and
 * the next try (a back-off, not synchronisation): the merged watch that
 * ends must not wait out a pending pause.
 *
 * @module
 */

/** Waits `ms`, or less when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}
