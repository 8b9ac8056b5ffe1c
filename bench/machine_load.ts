/**
 * How much of the machine something other than this benchmark used: the
 * machine's busy CPU time (/proc/stat) minus the CPU time of this process and
 * all its descendants (live ones from /proc/<pid>/stat, reaped ones through
 * their parents' cutime/cstime). On a shared machine a cell measured while
 * another job ran is not comparable; this tells which ones.
 *
 * @module
 */

const TICKS = 100; // CLK_TCK
const CORES = navigator.hardwareConcurrency;

/** One reading. */
export interface LoadSnapshot {
  at: number;
  machineBusyS: number;
  stealS: number;
  oursS: number;
}

function machine(): { busy: number; steal: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice
  const busy = f[0] + f[1] + f[2] + f[5] + f[6];
  return { busy: busy / TICKS, steal: (f[7] ?? 0) / TICKS };
}

function ourTree(): number {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // f[1] = ppid; f[11..14] = utime stime cutime cstime
      parent.set(Number(entry.name), Number(f[1]));
      cpu.set(
        Number(entry.name),
        Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]),
      );
    } catch {
      // exited meanwhile
    }
  }
  const self = Deno.pid;
  let ticks = 0;
  for (const [pid, t] of cpu) {
    let p: number | undefined = pid;
    for (let hops = 0; p !== undefined && p > 1 && hops < 64; hops++) {
      if (p === self) {
        ticks += t;
        break;
      }
      p = parent.get(p);
    }
  }
  return ticks / TICKS;
}

/** Reads the counters now. */
export function loadSnapshot(): LoadSnapshot {
  const m = machine();
  return {
    at: performance.now(),
    machineBusyS: m.busy,
    stealS: m.steal,
    oursS: ourTree(),
  };
}

/** Share of the machine's capacity used by others (and stolen) between a and b, %. */
export function foreignPercent(
  a: LoadSnapshot,
  b: LoadSnapshot,
): { foreignPct: number; stealPct: number } {
  const wall = (b.at - a.at) / 1000;
  if (wall <= 0) return { foreignPct: 0, stealPct: 0 };
  const cap = wall * CORES;
  const foreign = Math.max(
    0,
    (b.machineBusyS - a.machineBusyS) - (b.oursS - a.oursS),
  );
  return {
    foreignPct: Math.round(1000 * foreign / cap) / 10,
    stealPct: Math.round(1000 * (b.stealS - a.stealS) / cap) / 10,
  };
}
