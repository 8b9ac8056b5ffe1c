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

/** How long an identity is used before the token file is looked at again. */
const IDENTITY_RECHECK_MS = 1000;

/**
 * The identity the real token names; re-read when the kubelet rotates the
 * token, looked for at most once a second: a rotated token names the same
 * Pod and service account, and checking the file on every call cost a
 * `readlink` per call. Undefined outside a Pod (kubeconfig) or for a token
 * that is not a service-account JWT.
 */
export function workloadIdentity(
  saDir: string,
): () => WorkloadIdentity | undefined {
  if (!existsSync(join(saDir, "token"))) return () => undefined;
  const account = new RealServiceAccount(saDir);
  let seen: string | undefined;
  let identity: WorkloadIdentity | undefined;
  let checkedAt = -Infinity;
  return () => {
    const now = performance.now();
    if (now - checkedAt < IDENTITY_RECHECK_MS) return identity;
    checkedAt = now;
    try {
      const token = account.current().token;
      if (token !== seen) {
        seen = token;
        identity = identityOf(token);
      }
    } catch {
      identity = undefined;
      seen = undefined;
    }
    return identity;
  };
}
