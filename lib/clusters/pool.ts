/**
 * The keep-alive pool of ordinary upstream calls.
 *
 * @module
 */

import { Agent, type AgentOptions } from "node:https";

/**
 * How long a pooled upstream connection may sit idle before MCA closes it.
 * kube-apiserver closes a connection idle for 90 s (`IdleTimeout` of its
 * secure serving), and load balancers before it close theirs (Azure's after 4
 * minutes, AWS ALB's after 60 s). A call sent on a connection just as the
 * server closes it gets no answer; closing first, below both, keeps that race
 * away instead of only recovering from it (the transport's retry covers
 * reads, not writes).
 */
export const POOL_IDLE_MS = 55_000;

/**
 * A keep-alive agent for one upstream whose free sockets close after
 * `idleMs`. The timeout goes to the agent only, never to `tls`: dedicated
 * connections (watches, upgrades) take those options and must not time out
 * when quiet.
 */
export function pooledAgent(
  tls: AgentOptions,
  idleMs: number = POOL_IDLE_MS,
): Agent {
  return new Agent({ ...tls, timeout: idleMs });
}
