/**
 * CPU time of every thread of a process, grouped by thread name, from
 * /proc/<pid>/task/<tid>/stat. The process's CPU time counts all its
 * threads (V8's GC workers, tokio's blocking pool, the main thread), while
 * a `--cpu-prof` profile shows the main thread only; this tells them apart.
 *
 * @module
 */

const CLOCK_TICKS = 100; // getconf CLK_TCK on Linux x86_64

/** Ticks (user+system) per thread id, with the thread's name. */
export type ThreadTicks = Map<number, { name: string; ticks: number }>;

/** Reads the ticks of every live thread of `pid`. */
export function threadTicks(pid: number): ThreadTicks {
  const out: ThreadTicks = new Map();
  for (const e of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${e.name}/stat`);
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(e.name), {
        name,
        ticks: Number(fields[11]) + Number(fields[12]),
      });
    } catch {
      // thread gone
    }
  }
  return out;
}

/**
 * CPU seconds each thread name used between two readings (threads with the
 * same name summed, digits folded so V8's numbered workers group; the main
 * thread apart).
 */
export function threadDelta(
  before: ThreadTicks,
  after: ThreadTicks,
): Map<string, { seconds: number; threads: number }> {
  const out = new Map<string, { seconds: number; threads: number }>();
  const main = Math.min(...after.keys()); // the main thread's id is the pid
  for (const [tid, a] of after) {
    const d = a.ticks - (before.get(tid)?.ticks ?? 0);
    const name = tid === main
      ? `${a.name} (main thread)`
      : a.name.replace(/\d+/g, "#");
    const cur = out.get(name) ?? { seconds: 0, threads: 0 };
    cur.seconds += d / CLOCK_TICKS;
    cur.threads += 1;
    out.set(name, cur);
  }
  return out;
}

/** One line per thread name: CPU µs per request and share of the total. */
export function formatThreads(
  delta: Map<string, { seconds: number; threads: number }>,
  requests: number,
): string {
  let total = 0;
  for (const v of delta.values()) total += v.seconds;
  const lines = ["CPU by thread (µs per request, share):"];
  for (
    const [name, v] of [...delta].sort((a, b) => b[1].seconds - a[1].seconds)
  ) {
    if (v.seconds === 0) continue;
    lines.push(
      `  ${(v.seconds / requests * 1e6).toFixed(0).padStart(6)} µs  ${
        (100 * v.seconds / (total || 1)).toFixed(1).padStart(5)
      }%  ${name} (${v.threads} thread${v.threads === 1 ? "" : "s"})`,
    );
  }
  return lines.join("\n");
}

/**
 * Voluntary context switches of the main thread so far: each is one sleep
 * (epoll_wait, a futex) the event loop woke up from, so their count per
 * request says how many times a call wakes the process.
 */
export function mainWakeups(pid: number): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/status`);
  const m = text.match(/^voluntary_ctxt_switches:\s+(\d+)/m);
  return m ? Number(m[1]) : NaN;
}
