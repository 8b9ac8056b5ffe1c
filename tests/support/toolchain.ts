/**
 * Runs one of the toolchain build scripts (`tests/e2e/toolchain/*.sh`) and
 * reads the `name=path` lines it prints: the one way every test helper gets
 * its binaries (cluster, helm, OTLP receiver), memoised per process so a
 * suite builds each at most once, and retried after a failed build.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";

const TOOLCHAIN_DIR = fileURLToPath(
  new URL("../e2e/toolchain/", import.meta.url),
);

const runs = new Map<string, Promise<Map<string, string>>>();

/** The `name=path` lines of `script` (progress streamed to stderr). */
export function buildScript(script: string): Promise<Map<string, string>> {
  let run = runs.get(script);
  if (run === undefined) {
    run = runOnce(script).catch((error) => {
      runs.delete(script);
      throw error;
    });
    runs.set(script, run);
  }
  return run;
}

/** One path `script` reports, built first if needed. */
export async function builtPath(script: string, name: string): Promise<string> {
  const value = (await buildScript(script)).get(name);
  if (!value) throw new Error(`${script} did not report a path for ${name}`);
  return value;
}

async function runOnce(script: string): Promise<Map<string, string>> {
  const path = join(TOOLCHAIN_DIR, script);
  const { code, stdout } = await new Deno.Command("bash", {
    args: [path],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (code !== 0) {
    throw new Error(
      `${path} exited with code ${code}; its output is above (stderr)`,
    );
  }
  const paths = new Map<string, string>();
  for (const line of new TextDecoder().decode(stdout).split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) paths.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return paths;
}
