/**
 * Carrying out a routing plan for one HTTP call: the "decide" and "forward"
 * steps of the pipeline for Phase 2.
 *
 * Most calls stream untouched to one cluster (the transport's fast path).
 * Bodies are read only when a decision or a rewrite needs them: a rule
 * matching object labels, a create/update on a spread set (the object names
 * its cluster), or a namespace mapped to another one on the target cluster.
 * Answers are read only when they must change (namespace mapping, objects
 * of a spread set) or merge (fan-out).
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import type { RequestInfo } from "../kube/request_info.ts";
import { needsBodyLabels, type Plan } from "../routing/router.ts";
import { applyPolicy } from "./policy_step.ts";
import { AbandonedBodyError, hasBody } from "./request_body.ts";
import { createTurn, planFromBody } from "./body_plan.ts";
import { forwardOne } from "./forward_one.ts";
import type { Dispatched, DispatchOptions } from "./dispatch_options.ts";
import { forwardTransformed } from "./transformed.ts";
import type { Outcome } from "../proxy/transport.ts";
import { upstreamHeaders } from "../proxy/headers.ts";
import { type FanoutCall, fanoutList } from "./fanout.ts";
import { searchByName } from "./search.ts";
import { fanoutWatch } from "./merged_watch.ts";
import { writeForbidden, writeStatus } from "../kube/status.ts";
import { isAccessReview, reviewAccess } from "./access_review.ts";

export type { Dispatched, DispatchOptions } from "./dispatch_options.ts";

function describe(plan: Plan): string {
  return plan.kind === "one" ? plan.cluster : plan.clusters.join("+") || "none";
}

/** The call's decision: one plan, and the body when it had to be read. */
interface Decided {
  plan: Plan;
  body?: Uint8Array;
  /** Set when the call was answered while deciding (413, 403). */
  answered?: Outcome;
}

/**
 * Decide: one plan per call, on one routing snapshot. A first look (no
 * round-robin turn taken) tells whether the body is needed; when it is,
 * the plan is made again with what the body says. Then the policy step
 * leaves out the clusters it denies.
 */
async function decide(
  req: IncomingMessage,
  res: ServerResponse,
  info: RequestInfo,
  options: DispatchOptions,
): Promise<Decided> {
  const { state, planner } = options;
  const look = planner.plan(info, {}, { advance: false });
  const spread = look.kind !== "one" || look.decorate === true;
  const needsBody = hasBody(req) &&
    (needsBodyLabels(state.config, info) || spread ||
      look.namespace !== undefined);
  let plan = look;
  let body: Uint8Array | undefined;
  if (needsBody) {
    const read = await planFromBody(req, res, { info, look, options });
    if (read.answered) return { plan: look, answered: read.answered };
    plan = read.plan;
    body = read.body;
  } else if (plan.kind === "one" && plan.decorate) {
    plan = planner.plan(info); // take the turn
  }
  const checked = applyPolicy(plan, info, options);
  options.observation?.decided?.(checked.decision);
  if (checked.refused) {
    return { plan, answered: writeForbidden(res, info) };
  }
  return { plan: checked.plan, body };
}

/** Plans and serves one HTTP call: decide once, then forward. */
export async function dispatch(
  req: IncomingMessage,
  res: ServerResponse,
  info: RequestInfo,
  options: DispatchOptions,
): Promise<Dispatched> {
  let done: Dispatched;
  let body: Uint8Array | undefined;
  try {
    if (isAccessReview(info)) return await review(req, res, info, options);
    const decided = await decide(req, res, info, options);
    if (decided.answered) {
      return { cluster: describe(decided.plan), outcome: decided.answered };
    }
    body = decided.body;
    done = await carryOut(req, res, info, { ...decided, options });
  } catch (error) {
    if (!(error instanceof AbandonedBodyError)) throw error;
    res.destroy();
    return {
      cluster: "none",
      outcome: { status: 0, bytesIn: 0, bytesOut: 0, error: error.message },
    };
  }
  // A body the decision read is the body sent: hand it to the observers.
  if (body !== undefined && done.outcome.requestBody === undefined) {
    done.outcome.requestBody = body;
  }
  return done;
}

/** A SelfSubjectAccessReview, answered by the clusters of the call it asks about. */
function review(
  req: IncomingMessage,
  res: ServerResponse,
  info: RequestInfo,
  options: DispatchOptions,
): Promise<Dispatched> {
  return reviewAccess(req, res, {
    options,
    callFor: (plan, clusters) =>
      fanoutCall(req, res, info, plan, clusters, options),
    asItself: async (body) => {
      const checked = applyPolicy(options.planner.plan(info), info, options);
      options.observation?.decided?.(checked.decision);
      if (checked.refused) {
        return { cluster: "none", outcome: writeForbidden(res, info) };
      }
      return await carryOut(req, res, info, {
        plan: checked.plan,
        body,
        options,
      });
    },
  });
}

/** Forward: the plan, carried out by the path it needs. */
async function carryOut(
  req: IncomingMessage,
  res: ServerResponse,
  info: RequestInfo,
  args: { plan: Plan; body?: Uint8Array; options: DispatchOptions },
): Promise<Dispatched> {
  const { plan, body, options } = args;
  if (plan.kind === "one") {
    if (plan.namespace || plan.decorate) {
      const clusters = [plan.cluster, ...plan.fallbacks ?? []];
      const call = fanoutCall(req, res, info, plan, clusters, options);
      return await forwardTransformed(req, res, info, {
        plan,
        body,
        call,
        capture: options.observation?.responseBodyBytes,
      });
    }
    return await forwardOne(req, res, info, { plan, body, options });
  }
  // A merged watch asks every cluster of the set, known-down ones too: it
  // keeps trying those and they join the stream when they answer.
  const watched = info.verb === "watch" && plan.kind === "fanout"
    ? [...plan.clusters, ...plan.missing]
    : plan.clusters;
  const call = fanoutCall(req, res, info, plan, watched, options);
  if (plan.kind === "search") {
    const createCluster = () =>
      createTurn(info, { set: plan.clusters, body, options });
    return {
      cluster: describe(plan),
      outcome: await searchByName(call, body, { info, createCluster }),
    };
  }
  if (plan.clusters.length === 0) {
    return {
      cluster: "none",
      outcome: writeStatus(
        res,
        503,
        "ServiceUnavailable",
        `mca: every cluster of rule ${plan.rule} is unavailable (${
          plan.missing.join(", ")
        })`,
      ),
    };
  }
  const outcome = info.verb === "watch"
    ? await fanoutWatch(call)
    : await fanoutList(call);
  return { cluster: describe(plan), outcome };
}

function fanoutCall(
  req: IncomingMessage,
  res: ServerResponse,
  info: RequestInfo,
  plan: Plan,
  clusters: string[],
  options: DispatchOptions,
): FanoutCall {
  const headers = upstreamHeaders(req, undefined);
  // MCA reads these answers: ask for JSON (a Table too, if the app wants one).
  const accept = String(req.headers.accept ?? "");
  headers.accept = accept.includes("as=Table")
    ? "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    : "application/json";
  delete headers["accept-encoding"];
  return {
    req,
    res,
    headers,
    namespace: plan.namespace && info.namespace
      ? { app: info.namespace, remote: plan.namespace }
      : undefined,
    clusters: clusters.map((name) => ({
      name,
      upstream: options.state.registry.get(name),
    })),
    missing: plan.kind === "fanout"
      ? plan.missing
      : plan.kind === "search"
      ? plan.missing ?? []
      : [],
    partial: plan.kind === "fanout" && plan.partial === true,
    byName: info.name !== "",
    denied: plan.kind === "fanout" ? plan.denied ?? [] : [],
    connectTimeoutMs: options.connectTimeoutMs,
    onClusterError: (cluster, error) =>
      options.state.registry.setHealthy(cluster, false, error.message),
    observe: (cluster, target) =>
      options.observation?.upstream?.({
        cluster,
        method: req.method ?? "GET",
        target,
        info,
      }),
  };
}
