/**
 * Where an idle mca's RSS goes: /proc/<pid>/smaps grouped by mapping (the
 * deno executable's pages, V8's heap, the allocator's anonymous memory),
 * the JS heap by class (one snapshot), and the scripts loaded at start,
 * grouped by origin (our lib/, each npm package, Deno's node: and ext:
 * code) with their source sizes: what could be imported later instead.
 *
 *   deno run -A bench/idle_memory.ts [--v8-flags=...] [--main FILE]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { useMain } from "./mca.ts";
import { sleep } from "./procs.ts";
import {
  type HeapSummary,
  type Inspector,
  summarizeHeap,
} from "./heap_snapshot.ts";
import { startInspectedMca, v8FlagsOption } from "./inspected_mca.ts";

const ROOT_URL = new URL("../", import.meta.url).href;

/** Rss and Anonymous KiB of each mapping of `pid`, summed by name. */
export function smapsByMapping(
  text: string,
): Map<string, { rss: number; anon: number }> {
  const out = new Map<string, { rss: number; anon: number }>();
  let name = "";
  for (const line of text.split("\n")) {
    const head = line.match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/);
    if (head) {
      name = head[1] || "[anonymous]";
      if (name.includes("/")) name = name.slice(name.lastIndexOf("/") + 1);
      continue;
    }
    const m = line.match(/^(Rss|Anonymous):\s+(\d+) kB/);
    if (!m) continue;
    const t = out.get(name) ?? { rss: 0, anon: 0 };
    if (m[1] === "Rss") t.rss += Number(m[2]);
    else t.anon += Number(m[2]);
    out.set(name, t);
  }
  return out;
}

/** Groups a script URL: `lib/…`, `npm:<package>`, `node:`, `ext:<ext>`. */
export function scriptGroup(url: string): string {
  if (url.startsWith(ROOT_URL)) {
    const rel = url.slice(ROOT_URL.length);
    return rel.includes("/") ? rel.slice(0, rel.lastIndexOf("/")) : rel;
  }
  const npm = url.match(/registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\//);
  if (npm) return `npm:${npm[1]}`;
  if (url.startsWith("ext:")) return url.split("/")[0];
  if (url.startsWith("node:")) return "node:";
  return url.length > 50 ? url.slice(0, 50) + "…" : url || "(eval)";
}

async function main(): Promise<void> {
  const flags = parseArgs({
    args: Deno.args,
    options: { "v8-flags": { type: "string" }, main: { type: "string" } },
  }).values;
  if (flags.main) useMain(flags.main);
  const run = await startInspectedMca("idle-memory", {
    v8Flags: v8FlagsOption(flags["v8-flags"]),
  });
  try {
    await sleep(1500);
    printMappings(run.mca.pid);
    printScripts(await loadedScripts(run.insp));
    printHeap(summarizeHeap(await run.insp.heapSnapshot()));
  } finally {
    await run.stop();
  }
}

function printMappings(pid: number): void {
  const maps = smapsByMapping(Deno.readTextFileSync(`/proc/${pid}/smaps`));
  console.log("RSS by mapping (KiB, anonymous in brackets):");
  const top = [...maps].sort((a, b) => b[1].rss - a[1].rss).slice(0, 12);
  for (const [k, v] of top) {
    console.log(`  ${String(v.rss).padStart(7)} (${v.anon})  ${k}`);
  }
}

/** Every script the process has parsed (the inspector replays them). */
async function loadedScripts(
  insp: Inspector,
): Promise<{ url: string; length: number }[]> {
  const scripts: { url: string; length: number }[] = [];
  const parsed = new Promise<void>((resolve) => {
    let quiet: ReturnType<typeof setTimeout> | undefined;
    insp.onEvent("Debugger.scriptParsed", (p) => {
      scripts.push({ url: String(p.url), length: Number(p.length) });
      clearTimeout(quiet);
      quiet = setTimeout(resolve, 500);
    });
  });
  await insp.call("Debugger.enable");
  await parsed;
  await insp.call("Debugger.disable");
  return scripts;
}

function printScripts(scripts: { url: string; length: number }[]): void {
  const groups = new Map<string, { n: number; bytes: number }>();
  for (const s of scripts) {
    const g = groups.get(scriptGroup(s.url)) ?? { n: 0, bytes: 0 };
    g.n++;
    g.bytes += s.length;
    groups.set(scriptGroup(s.url), g);
  }
  console.log(
    `scripts loaded: ${scripts.length}; by origin (files, KiB of source):`,
  );
  const top = [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 30);
  for (const [k, v] of top) {
    const kib = (v.bytes / 1024).toFixed(0);
    console.log(`  ${String(v.n).padStart(4)} ${kib.padStart(6)}  ${k}`);
  }
}

function printHeap(heap: HeapSummary): void {
  console.log(
    `JS heap: ${(heap.totalBytes / 1024).toFixed(0)} KiB; largest classes:`,
  );
  const top = [...heap.byClass].sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, 15);
  for (const [k, v] of top) {
    const kib = (v.bytes / 1024).toFixed(0);
    console.log(
      `  ${kib.padStart(6)} KiB ${String(v.count).padStart(7)}×  ${k}`,
    );
  }
}

if (import.meta.main) await main();
