/**
 * Start-up of mca as a process: spawn → ready line (certificates made, app
 * service-account files written, port accepting) → first successful TLS
 * request through it; and its idle RSS a moment later. A fresh state dir is
 * a Pod's first start (CA + leaf generated); a reused one is a restart.
 *
 * @module
 */

import { join } from "node:path";
import { getOnce } from "./client.ts";
import { type McaTarget, startMca } from "./mca.ts";
import { memory, sleep } from "./procs.ts";
import { median, round } from "./stats.ts";

/** One start. */
export interface StartRun {
  readyMs: number;
  firstRequestMs: number;
  selfStartupMs: number;
  idleRssMiB: number;
}

/** Medians over the measured runs. */
export interface StartupResult {
  runs: number;
  fresh: StartRun[];
  restart: StartRun[];
  medianFresh: StartRun;
  medianRestart: StartRun;
}

async function oneStart(
  target: McaTarget,
  dir: string,
  name: string,
  stateDir: string | undefined,
  idleWaitMs: number,
): Promise<StartRun> {
  const mca = await startMca(target, { dir, name, stateDir });
  const afterReady = performance.now();
  try {
    const got = await getOnce(mca.port, "/version", {
      ca: mca.appCaPem,
      token: "any-app-token",
    });
    const firstRequestMs = mca.readyMs + performance.now() - afterReady;
    if (got.status !== 200) {
      throw new Error(`${name}: first request answered ${got.status}`);
    }
    await sleep(idleWaitMs);
    return {
      readyMs: round(mca.readyMs, 1),
      firstRequestMs: round(firstRequestMs, 1),
      selfStartupMs: mca.selfStartupMs,
      idleRssMiB: round(memory(mca.pid).rssKiB / 1024, 1),
    };
  } finally {
    await mca.stop();
  }
}

/** `runs` fresh starts and `runs` restarts (after one unmeasured warm-up). */
export async function measureStartup(
  target: McaTarget,
  dir: string,
  runs: number,
  idleWaitMs: number,
  log: (line: string) => void,
): Promise<StartupResult> {
  // Warm-up: Deno's module cache, the page cache.
  await oneStart(target, dir, "mca-start-warmup", undefined, 0);
  const fresh: StartRun[] = [];
  const restart: StartRun[] = [];
  const keptState = join(dir, "mca-start-kept-state");
  for (let i = 0; i < runs; i++) {
    fresh.push(
      await oneStart(target, dir, `mca-start-${i}`, undefined, idleWaitMs),
    );
    log(`  fresh start ${i + 1}/${runs}: ${JSON.stringify(fresh[i])}`);
  }
  await oneStart(target, dir, "mca-restart-seed", keptState, 0);
  for (let i = 0; i < runs; i++) {
    restart.push(
      await oneStart(target, dir, `mca-restart-${i}`, keptState, idleWaitMs),
    );
    log(`  restart ${i + 1}/${runs}: ${JSON.stringify(restart[i])}`);
  }
  const med = (xs: StartRun[]): StartRun => ({
    readyMs: median(xs.map((x) => x.readyMs)),
    firstRequestMs: median(xs.map((x) => x.firstRequestMs)),
    selfStartupMs: median(xs.map((x) => x.selfStartupMs)),
    idleRssMiB: median(xs.map((x) => x.idleRssMiB)),
  });
  return {
    runs,
    fresh,
    restart,
    medianFresh: med(fresh),
    medianRestart: med(restart),
  };
}
