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
import { builtPath } from "./toolchain.ts";

/** The repository root (absolute, with a trailing slash). */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The chart. */
export const CHART_DIR = join(ROOT, "deploy", "helm", "mca");

/**
 * The path of the helm binary, built first if it is not cached yet
 * (`tests/e2e/toolchain/build_helm.sh`, progress on stderr; cold: ~1.5 min
 * on 2 cores plus module downloads; warm: milliseconds). Memoised per
 * process; a failed build is retried on the next call.
 */
export function ensureHelm(): Promise<string> {
  return builtPath("build_helm.sh", "helm");
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

/** The header of `deploy/manifests/mca.yaml`, above the render. */
export const MANIFESTS_HEADER =
  `# MCA's admission webhook as plain manifests: deploy/helm/mca rendered with
# deploy/manifests/values.yaml, i.e.
#   helm template mca deploy/helm/mca --namespace mca-system \\
#     -f deploy/manifests/values.yaml
# Do not edit: tests/e2e/helm_test.ts keeps this file equal to that render;
# regenerate it with MCA_UPDATE_GOLDEN=1 deno test -A tests/e2e/helm_test.ts
#
# The chart generates the webhook's serving certificate at install time; a
# fixed file cannot, so these manifests expect a TLS Secret that you create
# and its CA in the webhook configuration's caBundle:
#   kubectl create namespace mca-system
#   kubectl -n mca-system create secret tls mca-webhook-tls \\
#     --cert=tls.crt --key=tls.key   # DNS name mca.mca-system.svc
#   sed "s|REPLACE-WITH-BASE64-OF-THE-CA-PEM|$(base64 -w0 ca.crt)|" mca.yaml |
#     kubectl apply -f -
# (or install the chart with certManager.enabled=true, and cert-manager
# issues, renews and injects it). Until the placeholder is replaced, the API
# server refuses the MutatingWebhookConfiguration (it is not base64), so
# nothing is injected by accident with a CA that cannot work.
`;

/** `helm template mca <chart> --namespace mca-system` with `args` (values). */
export async function renderChart(args: string[]): Promise<string> {
  return (await helm([
    "template",
    "mca",
    CHART_DIR,
    "--namespace",
    "mca-system",
    ...args,
  ])).stdout;
}

/** What `deploy/manifests/mca.yaml` must contain. */
export async function renderManifests(): Promise<string> {
  const values = join(ROOT, "deploy", "manifests", "values.yaml");
  return MANIFESTS_HEADER + await renderChart(["-f", values]);
}
