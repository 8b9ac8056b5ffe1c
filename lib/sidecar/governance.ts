/**
 * The sidecar's governance wiring: the call policy file and the workload
 * identity read from the real token's claims (for policy rules and audit
 * events). Kept out of `run.ts` so start-up reads as a list of steps.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import type { LogSink } from "../observe/log.ts";
import type { WorkloadIdentity } from "../observe/observer.ts";
import { identityOf } from "../policy/identity.ts";
import { type CallPolicy, PolicySource } from "../policy/source.ts";
import { RealServiceAccount } from "./service_account.ts";

/** The policy of `--policy FILE`, or nothing when the flag is absent. */
export function openPolicy(
  file: string | undefined,
  log: LogSink,
): { source?: PolicySource; current: () => CallPolicy | undefined } {
  if (file === undefined) return { current: () => undefined };
  const source = PolicySource.open(file, log);
  return { source, current: () => source.current };
}

/**
 * The identity the real token names; re-read when the kubelet rotates the
 * token. Undefined outside a Pod (kubeconfig) or for a token that is not a
 * service-account JWT.
 */
export function workloadIdentity(
  saDir: string,
): () => WorkloadIdentity | undefined {
  if (!existsSync(join(saDir, "token"))) return () => undefined;
  const account = new RealServiceAccount(saDir);
  let seen: string | undefined;
  let identity: WorkloadIdentity | undefined;
  return () => {
    try {
      const token = account.current().token;
      if (token !== seen) {
        seen = token;
        identity = identityOf(token);
      }
      return identity;
    } catch {
      return undefined;
    }
  };
}
