/**
 * helm for the chart tests: built from the wrapper module in
 * `tests/e2e/toolchain/helm/` by `build_helm.sh` and cached under
 * `~/.cache/mca/bin/helm-<version>/` (see {@linkcode ensureHelm}), and a
 * runner that keeps helm's cache, config and data under a test directory.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";

const TOOLCHAIN_DIR = fileURLToPath(
  new URL("../e2e/toolchain/", import.meta.url),
);

/** The repository root (absolute, with a trailing slash). */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The chart. */
export const CHART_DIR = join(ROOT, "deploy", "helm", "mca");

let helmPromise: Promise<string> | undefined;

/**
 * The path of the helm binary, built first if it is not cached yet
 * (`tests/e2e/toolchain/build_helm.sh`, progress on stderr; cold: ~1.5 min
 * on 2 cores plus module downloads; warm: milliseconds). Memoised per
 * process; a failed build is retried on the next call.
 */
export function ensureHelm(): Promise<string> {
  helmPromise ??= runBuildScript().catch((error) => {
    helmPromise = undefined;
    throw error;
  });
  return helmPromise;
}

async function runBuildScript(): Promise<string> {
  const script = join(TOOLCHAIN_DIR, "build_helm.sh");
  const { code, stdout } = await new Deno.Command("bash", {
    args: [script],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (code !== 0) {
    throw new Error(
      `${script} exited with code ${code}; its output is above (stderr)`,
    );
  }
  for (const line of new TextDecoder().decode(stdout).split("\n")) {
    if (line.startsWith("helm=")) return line.slice("helm=".length);
  }
  throw new Error(`${script} did not report a path for helm`);
}

/** Result of {@linkcode helm}. */
export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode helm}. */
export interface HelmOptions {
  /** helm's cache, config and data go under `<home>/helm` (default `tmp/helm-home`). */
  home?: string;
  /** Throw when helm exits non-zero (default true). */
  check?: boolean;
}

/**
 * Runs helm with `args`, its state directories under `opts.home`, and no
 * repositories or registries configured: nothing it does leaves the machine
 * unless a command names a remote.
 */
export async function helm(
  args: string[],
  opts: HelmOptions = {},
): Promise<HelmResult> {
  const bin = await ensureHelm();
  const home = join(opts.home ?? join(ROOT, "tmp", "helm-home"), "helm");
  const out = await new Deno.Command(bin, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: {
      HELM_CACHE_HOME: join(home, "cache"),
      HELM_CONFIG_HOME: join(home, "config"),
      HELM_DATA_HOME: join(home, "data"),
    },
  }).output();
  const result = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (result.code !== 0 && opts.check !== false) {
    throw new Error(
      `helm ${
        args.join(" ")
      } exited with code ${result.code}:\n${result.stderr}`,
    );
  }
  return result;
}
