/**
 * What carrying out a plan needs and what it gives back, shared by the
 * dispatcher and the paths it hands calls to.
 *
 * @module
 */

import type { Planner } from "../routing/router.ts";
import type { RoutingState } from "../routing/source.ts";
import type { CallObservation, WorkloadIdentity } from "../observe/observer.ts";
import type { Outcome } from "../proxy/transport.ts";
import type { PolicyCheck } from "./policy_step.ts";

/** What a dispatch needs besides the call. */
export interface DispatchOptions {
  /** The routing version this call is decided and served under. */
  state: RoutingState;
  /** Plans under `state`'s configuration only (see `Router.at`). */
  planner: Planner;
  connectTimeoutMs: number;
  /** Bound on an answer's head for calls that are not streams. */
  headTimeoutMs?: number;
  /** The call's observer: told the decision and every upstream request. */
  observation?: CallObservation;
  policy?: PolicyCheck;
  identity?: WorkloadIdentity;
}

/** How the call went, and where it went (for the log line). */
export interface Dispatched {
  outcome: Outcome;
  cluster: string;
}
