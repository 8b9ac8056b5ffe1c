/**
 * `mca`: the Multi Cluster Adapter. One binary, modes chosen by flags:
 * `mca` runs the proxy, `mca --inject` rewrites manifests, `mca --probe` is
 * the sidecar's startup probe. This file only parses flags and dispatches;
 * the flag table, the usage text and the mode runners live in `lib/cli/`.
 *
 * @module
 */

import { fail, parseFlags } from "./lib/cli/flags.ts";
import {
  runInject,
  runProbeMode,
  runProxy,
  runWebhook,
} from "./lib/cli/modes.ts";
import { USAGE, VERSION } from "./lib/cli/usage.ts";

async function main(args: string[]): Promise<void> {
  const flags = parseFlags(args);
  if (flags.help) {
    console.log(USAGE);
    return;
  }
  if (flags.version) {
    console.log(`mca ${VERSION}`);
    return;
  }
  if (flags.inject && flags.probe) {
    fail("--inject and --probe are separate modes; pick one", 2);
  }
  if (flags.inject) return await runInject(flags);
  if (flags.webhook) return await runWebhook(flags);
  if (flags.probe) return await runProbeMode(flags);
  await runProxy(flags);
}

if (import.meta.main) {
  await main(Deno.args);
}
