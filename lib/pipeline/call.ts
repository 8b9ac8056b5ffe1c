/**
 * One call through MCA, as one pipeline:
 *
 *   accept → parse (RequestInfo) → policy + decide (once, on one routing
 *   snapshot) → forward (the transport) → observe (start / decided /
 *   upstream / end events)
 *
 * The routing version in force when the call is accepted is the one the
 * whole call is decided and served under (`Router.at`): a reload in the
 * middle of a call can never make it name a cluster its registry lacks.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { parseRequestInfo, type RequestInfo } from "../kube/request_info.ts";
import { dispatch } from "../multicluster/dispatch.ts";
import { applyPolicy, type PolicyCheck } from "../multicluster/policy_step.ts";
import type { Outcome } from "../proxy/transport.ts";
import { forwardUpgrade } from "../proxy/upgrade.ts";
import { respondFailureOnSocket } from "../proxy/failure.ts";
import type {
  CallObservation,
  CallStart,
  Observer,
  WorkloadIdentity,
} from "../observe/observer.ts";
import { withOutcomes } from "../observe/outcomes.ts";
import { LOCAL_CLUSTER, type Router } from "../routing/router.ts";
import type { RoutingSource, RoutingState } from "../routing/source.ts";
import { READY_PATH } from "../sidecar/probe.ts";
import { ServiceAccountError } from "../sidecar/service_account.ts";
import {
  failureStatus,
  forbiddenStatus,
  writeSocketStatus,
  writeStatus,
} from "../kube/status.ts";
import { refuseTarget } from "../kube/request_target.ts";

/** What every call needs from the running sidecar. */
export interface CallContext {
  routing: RoutingSource;
  router: Router;
  observer: Observer;
  connectTimeoutMs: number;
  headTimeoutMs?: number;
  /** The call policy in force, when one is configured. */
  policy?: () => PolicyCheck | undefined;
  /** The workload identity, when the real token tells it. */
  identity?: () => WorkloadIdentity | undefined;
}

let sequence = 0;

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function startCall(
  req: IncomingMessage,
  info: RequestInfo,
  context: CallContext,
  upgrade: boolean,
): { start: CallStart; observation: CallObservation } {
  const start: CallStart = {
    id: ++sequence,
    info,
    method: req.method ?? "GET",
    startedAt: performance.now(),
    receivedAt: new Date(),
    userAgent: header(req, "user-agent"),
    upgrade,
    contentType: header(req, "content-type"),
    traceparent: header(req, "traceparent"),
    tracestate: header(req, "tracestate"),
    identity: context.identity?.(),
    target: req.url,
    remoteAddr: req.socket?.remoteAddress,
  };
  return { start, observation: withOutcomes(context.observer.start(start)) };
}

function endCall(
  observation: CallObservation,
  start: CallStart,
  done: { cluster: string; outcome: Outcome },
): void {
  const { outcome } = done;
  observation.end({
    status: outcome.status,
    bytesIn: outcome.bytesIn,
    bytesOut: outcome.bytesOut,
    durationMs: performance.now() - start.startedAt,
    cluster: done.cluster,
    outcomes: [],
    error: outcome.error,
    traceId: observation.traceId?.(),
    requestBody: outcome.requestBody,
    requestBodyCut: outcome.requestBodyCut,
    responseBody: outcome.responseBody,
    responseBodyCut: outcome.responseBodyCut,
    ...(outcome.collisions ? { collisions: outcome.collisions } : {}),
  });
}

/** One routing version and a planner bound to it. */
function snapshot(context: CallContext): {
  state: RoutingState;
  planner: ReturnType<Router["at"]>;
} {
  const state = context.routing.current;
  const planner = context.router.at(
    state.config,
    (cluster) => state.registry.isHealthy(cluster),
  );
  return { state, planner };
}

/** Serves one plain HTTP call. */
export async function serveCall(
  req: IncomingMessage,
  res: ServerResponse,
  context: CallContext,
): Promise<void> {
  const refused = refuseTarget(req.url ?? "");
  if (refused !== undefined) {
    return refuseBadTarget(res, req, { context, reason: refused });
  }
  const info = parseRequestInfo(req.method ?? "GET", req.url ?? "/");
  if (info.path === READY_PATH) {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    return;
  }
  const { start, observation } = startCall(req, info, context, false);
  const { state, planner } = snapshot(context);
  let done: { cluster: string; outcome: Outcome };
  try {
    done = await dispatch(req, res, info, {
      state,
      planner,
      connectTimeoutMs: context.connectTimeoutMs,
      headTimeoutMs: context.headTimeoutMs,
      observation,
      policy: context.policy?.(),
      identity: start.identity,
    });
  } catch (error) {
    done = { cluster: LOCAL_CLUSTER, outcome: internalError(res, error) };
  }
  endCall(observation, start, done);
}

/**
 * A target MCA will not forward (lib/kube/request_target.ts): 400, logged
 * with the reason, nothing sent upstream, no cluster's health touched.
 */
function refuseBadTarget(
  res: ServerResponse,
  req: IncomingMessage,
  args: { context: CallContext; reason: string },
): void {
  const info = parseRequestInfo(req.method ?? "GET", "/");
  const { start, observation } = startCall(req, info, args.context, false);
  const outcome = writeStatus(res, 400, "BadRequest", `mca: ${args.reason}`);
  endCall(observation, start, {
    cluster: "none",
    outcome: { ...outcome, error: args.reason },
  });
}

/**
 * MCA could not build the upstream call (credentials unreadable): answer a
 * Status instead of hanging. The message never carries what was read.
 */
function internalError(res: ServerResponse, error: unknown): Outcome {
  // Only MCA's own service-account errors are known to carry no secret.
  const reason = error instanceof ServiceAccountError
    ? error.message
    : error instanceof Error
    ? error.name
    : "Error";
  if (res.headersSent) {
    res.destroy();
    return { status: 0, bytesIn: 0, bytesOut: 0, error: reason };
  }
  return {
    ...writeStatus(
      res,
      503,
      "ServiceUnavailable",
      "mca: cannot authenticate to the API server; see the mca container's log",
    ),
    error: `internal: ${reason}`,
  };
}

/**
 * Serves one upgrade (exec, attach, port-forward): decided like any call
 * (policy included, before the upgrade), sent to the first candidate
 * cluster that can be reached.
 */
export async function serveUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Uint8Array,
  context: CallContext,
): Promise<void> {
  const refused = refuseTarget(req.url ?? "");
  if (refused !== undefined) {
    writeSocketStatus(
      socket,
      failureStatus(400, "BadRequest", `mca: ${refused}`),
    );
    return;
  }
  const info = parseRequestInfo(req.method ?? "GET", req.url ?? "/");
  const { start, observation } = startCall(req, info, context, true);
  const { state, planner } = snapshot(context);
  const checked = applyPolicy(planner.plan(info), info, {
    policy: context.policy?.(),
    identity: start.identity,
  });
  observation.decided?.(checked.decision);
  let cluster = checked.decision.clusters[0] ?? "none";
  let outcome: Outcome;
  if (checked.refused) {
    outcome = refuseUpgrade(socket, info);
  } else {
    ({ cluster, outcome } = await upgradeTo(req, socket, head, {
      state,
      clusters: checked.decision.clusters,
      info,
      observation,
      connectTimeoutMs: context.connectTimeoutMs,
      headTimeoutMs: context.headTimeoutMs,
    }));
  }
  endCall(observation, start, { cluster, outcome });
}

async function upgradeTo(
  req: IncomingMessage,
  socket: Duplex,
  head: Uint8Array,
  args: {
    state: RoutingState;
    clusters: string[];
    info: RequestInfo;
    observation: CallObservation;
    connectTimeoutMs: number;
    headTimeoutMs?: number;
  },
): Promise<{ cluster: string; outcome: Outcome }> {
  // A spread set is asked in order; health first (an upgrade cannot be
  // replayed once its bytes flow, so only the choice uses fallbacks).
  const healthy = args.clusters.filter((c) => args.state.registry.isHealthy(c));
  const cluster = healthy[0] ?? args.clusters[0] ?? LOCAL_CLUSTER;
  try {
    const upstream = args.state.registry.get(cluster);
    const outcome = await forwardUpgrade(req, socket, head, {
      url: upstream.url,
      auth: await upstream.auth(),
      connectTimeoutMs: args.connectTimeoutMs,
      headTimeoutMs: args.headTimeoutMs,
      observation: args.observation.upstream?.({
        cluster,
        method: req.method ?? "GET",
        target: req.url ?? "/",
        info: args.info,
      }),
    });
    if (outcome.failure) {
      const answered = respondFailureOnSocket(socket, outcome.failure);
      outcome.status = answered.status;
      outcome.bytesOut += answered.bytesOut;
    }
    return { cluster, outcome };
  } catch (error) {
    socket.destroy();
    const reason = error instanceof Error ? error.name : "Error";
    return {
      cluster,
      outcome: { status: 503, bytesIn: 0, bytesOut: 0, error: reason },
    };
  }
}

function refuseUpgrade(socket: Duplex, info: RequestInfo): Outcome {
  return writeSocketStatus(socket, forbiddenStatus(info));
}
