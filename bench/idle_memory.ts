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
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startControlled } from "./control.ts";
import { freePort, startMca, useMain, writeFakeSaDir } from "./mca.ts";
import { sleep, stopAll } from "./procs.ts";
import {
  connectInspector,
  inspectorUrl,
  summarizeHeap,
} from "./heap_snapshot.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
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
  const dir = join(ROOT, "tmp", "bench", `idle-memory-${Date.now()}`);
  await Deno.mkdir(dir, { recursive: true });
  const token = "bench-real-sa-token";
  const upstream = await startControlled(
    "fake-upstream",
    fileURLToPath(new URL("./upstream_proc.ts", import.meta.url)),
    [token],
    join(dir, "fake-upstream"),
  );
  try {
    await writeFakeSaDir(
      join(dir, "real-sa"),
      token,
      String(upstream.ready.caPem),
    );
    const port = freePort();
    const mca = await startMca({
      realSaDir: join(dir, "real-sa"),
      host: "127.0.0.1",
      port: Number(upstream.ready.port),
    }, {
      dir,
      name: "mca",
      denoFlags: [`--inspect=127.0.0.1:${port}`],
      v8Flags: flags["v8-flags"]?.split(",").filter(Boolean),
    });
    await sleep(1500);
    const maps = smapsByMapping(
      Deno.readTextFileSync(`/proc/${mca.pid}/smaps`),
    );
    console.log("RSS by mapping (KiB, anonymous in brackets):");
    for (
      const [k, v] of [...maps].sort((a, b) => b[1].rss - a[1].rss).slice(0, 12)
    ) {
      console.log(`  ${String(v.rss).padStart(7)} (${v.anon})  ${k}`);
    }
    const insp = await connectInspector(await inspectorUrl(port));
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
    for (
      const [k, v] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(
        0,
        30,
      )
    ) {
      console.log(
        `  ${String(v.n).padStart(4)} ${
          (v.bytes / 1024).toFixed(0).padStart(6)
        }  ${k}`,
      );
    }
    await insp.call("Debugger.disable");
    const heap = summarizeHeap(await insp.heapSnapshot());
    console.log(
      `JS heap: ${(heap.totalBytes / 1024).toFixed(0)} KiB; largest classes:`,
    );
    for (
      const [k, v] of [...heap.byClass].sort((a, b) => b[1].bytes - a[1].bytes)
        .slice(0, 15)
    ) {
      console.log(
        `  ${(v.bytes / 1024).toFixed(0).padStart(6)} KiB ${
          String(v.count).padStart(7)
        }×  ${k}`,
      );
    }
    insp.close();
  } finally {
    await upstream.stop();
    await stopAll();
  }
}

if (import.meta.main) await main();
