/**
 * The keep-alive pool of ordinary upstream calls.
 *
 * @module
 */

import { Agent, type AgentOptions } from "node:https";
import type { Socket } from "node:net";

/**
 * How often the pool looks for idle connections; one found idle at two
 * looks in a row (no byte moved between them) is closed, so a connection
 * is closed 25–50 s after its last call. kube-apiserver closes a
 * connection idle for 90 s (`IdleTimeout` of its secure serving), and load
 * balancers before it close theirs (AWS ALB after 60 s). A call sent on a
 * connection just as the server closes it gets no answer; closing first
 * keeps that race away instead of only recovering from it (the transport's
 * retry covers reads, not writes). A sweep, not the agent's `timeout`:
 * that re-arms a socket timer on every call.
 */
export const POOL_SWEEP_MS = 25_000;

/** A keep-alive agent that closes the connections it has left idle. */
class SweptAgent extends Agent {
  #timer: ReturnType<typeof setInterval>;
  #seen = new WeakMap<Socket, number>();

  constructor(tls: AgentOptions, sweepMs: number) {
    super(tls);
    this.#timer = setInterval(() => this.#sweep(), sweepMs);
    Deno.unrefTimer(this.#timer);
  }

  #sweep(): void {
    for (const list of Object.values(this.freeSockets)) {
      for (const socket of [...(list ?? [])]) {
        const moved = socket.bytesWritten + socket.bytesRead;
        if (this.#seen.get(socket) === moved) socket.destroy();
        else this.#seen.set(socket, moved);
      }
    }
  }

  override destroy(): void {
    clearInterval(this.#timer);
    super.destroy();
  }
}

/**
 * A keep-alive agent for one upstream whose idle connections are closed
 * (see {@linkcode POOL_SWEEP_MS}). Only pooled sockets are looked at:
 * dedicated connections (watches, upgrades) may stay quiet for hours.
 */
export function pooledAgent(
  tls: AgentOptions,
  sweepMs: number = POOL_SWEEP_MS,
): Agent {
  return new SweptAgent(tls, sweepMs);
}
