/**
 * A real Prometheus exposition parser for tests: the Python
 * `prometheus_client` parsers (text 0.0.4 and OpenMetrics 1.0.0), in a
 * virtualenv under the cache dir, installed (pinned) on first use.
 *
 * @module
 */

import { join } from "node:path";

/** The pinned PyPI version of `prometheus_client`. */
export const PROMETHEUS_CLIENT_VERSION = "0.21.1";

/** One sample as the parser read it. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One metric family: its type and samples. */
export interface Family {
  name: string;
  type: string;
  samples: Sample[];
}

const SCRIPT = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
parse = om if sys.argv[1] == "openmetrics" else text_string_to_metric_families
out = []
for f in parse(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "samples": [
        {"name": s.name, "labels": s.labels,
         "value": s.value if math.isfinite(s.value) else str(s.value)}
        for s in f.samples]})
json.dump(out, sys.stdout)
`;

function cacheDir(): string {
  const base = Deno.env.get("MCA_CACHE_DIR") ??
    join(Deno.env.get("HOME") ?? "/root", ".cache", "mca");
  return join(base, `py-prometheus-client-${PROMETHEUS_CLIENT_VERSION}`);
}

async function run(cmd: string, args: string[], stdin?: string) {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (${out.code}): ${text(out.stderr)}`,
    );
  }
  return text(out.stdout);
}

/** The virtualenv's python, created and filled on first use. */
export async function ensureParser(): Promise<string> {
  const dir = cacheDir();
  const python = join(dir, "bin", "python");
  try {
    await run(python, ["-c", "import prometheus_client"]);
    return python;
  } catch {
    // not installed yet
  }
  await run("python3", ["-m", "venv", "--clear", dir]);
  await run(python, [
    "-m",
    "pip",
    "install",
    "--quiet",
    "--disable-pip-version-check",
    `prometheus_client==${PROMETHEUS_CLIENT_VERSION}`,
  ]);
  return python;
}

/** Parses an exposition with the Python client's own parser. */
export async function parseExposition(
  text: string,
  format: "text" | "openmetrics" = "text",
): Promise<Family[]> {
  const python = await ensureParser();
  return JSON.parse(await run(python, ["-c", SCRIPT, format], text));
}

/** The sum of samples `name` whose labels include `labels`; it must exist. */
export function sumSamples(
  families: Family[],
  name: string,
  labels: Record<string, string> = {},
): number {
  let total = 0;
  let found = false;
  for (const f of families) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      found = true;
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) {
        total += s.value;
      }
    }
  }
  if (!found) throw new Error(`${name} is not exported`);
  return total;
}
