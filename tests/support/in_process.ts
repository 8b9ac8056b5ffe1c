/**
 * The sidecar in the test's own process, as the real-tier tests that need
 * no simulated Pod run it: cluster A's real service-account directory, the
 * app's directory and the CA state under the test's directory, a free
 * loopback port, A reached the way a Pod reaches its API server.
 *
 * @module
 */

import { join } from "node:path";
import type { SidecarOptions } from "../../lib/sidecar/run.ts";
import type { Cluster } from "./cluster.ts";

/** The options every in-process real-tier sidecar shares. */
export function inProcessOptions(
  dir: string,
  local: Cluster,
  dirs: { saDir: string; clustersDir: string },
): SidecarOptions {
  return {
    saDir: dirs.saDir,
    mcaSaDir: join(dir, "app"),
    stateDir: join(dir, "state"),
    hosts: ["127.0.0.1"],
    port: 0,
    env: local.serviceEnv(),
    clustersDir: dirs.clustersDir,
  };
}
