/**
 * What importing one module costs an idle Deno process: a fresh process per
 * specifier imports it (nothing runs beyond its top level), collects
 * garbage, and reports its RSS and JS heap against a process that imported
 * only `--base` (default: the node: modules every mode of mca uses; several
 * specifiers are joined with `+`). Tells which of mca's start-up imports are worth loading lazily
 * (ADR 0014 did this for `@kubernetes/client-node`).
 *
 *   deno run -A bench/repro/import_cost.ts [specifier ...]
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url);
const DEFAULTS = [
  "npm:node-forge@1.4.3",
  "npm:yaml@2.9.1",
  "npm:prom-client@15.1.3",
  "./lib/inject/manifest.ts",
  "./lib/webhook/server.ts",
  "./lib/audit/setup.ts",
  "./lib/observe/tracing.ts",
  "./lib/sidecar/run.ts",
  "./lib/cli/modes.ts",
];

async function measure(
  spec: string,
): Promise<{ rssKiB: number; heapKiB: number }> {
  const imports = spec.split("+").filter((x) => x).map((one) => {
    const target = one.startsWith("./") ? new URL(one, ROOT).href : one;
    return `await import(${JSON.stringify(target)});`;
  }).join("\n");
  const code = `${imports}
globalThis.gc(); globalThis.gc();
await new Promise((r) => setTimeout(r, 300));
const s = Deno.readTextFileSync("/proc/self/status");
const u = Deno.memoryUsage();
console.log(JSON.stringify({ rssKiB: Number(s.match(/VmRSS:\\s+(\\d+)/)[1]), heapKiB: Math.round(u.heapUsed / 1024) }));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      `--config=${new URL("deno.json", ROOT).pathname}`,
      "-",
    ],
    cwd: ROOT.pathname,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  const w = out.stdin.getWriter();
  await w.write(new TextEncoder().encode(code));
  await w.close();
  const { stdout } = await out.output();
  return JSON.parse(new TextDecoder().decode(stdout).trim());
}

const baseAt = Deno.args.indexOf("--base");
const baseSpec = baseAt >= 0
  ? Deno.args[baseAt + 1]
  : "node:https+node:http+node:tls+node:crypto+node:zlib+node:fs";
const rest = Deno.args.filter((_, i) => i !== baseAt && i !== baseAt + 1);
const specs = rest.length ? rest : DEFAULTS;
const runs = 3;
const base: { rssKiB: number; heapKiB: number }[] = [];
for (let i = 0; i < runs; i++) base.push(await measure(baseSpec));
const med = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
const b = {
  rss: med(base.map((x) => x.rssKiB)),
  heap: med(base.map((x) => x.heapKiB)),
};
console.log(
  `${baseSpec}: RSS ${(b.rss / 1024).toFixed(1)} MiB, heap ${
    (b.heap / 1024).toFixed(1)
  } MiB (median of ${runs})`,
);
for (const spec of specs) {
  const xs = [];
  for (let i = 0; i < runs; i++) xs.push(await measure(`${baseSpec}+${spec}`));
  const rss = med(xs.map((x) => x.rssKiB)) - b.rss;
  const heap = med(xs.map((x) => x.heapKiB)) - b.heap;
  console.log(
    `${spec}: +${(rss / 1024).toFixed(1)} MiB RSS, +${
      (heap / 1024).toFixed(1)
    } MiB heap`,
  );
}
