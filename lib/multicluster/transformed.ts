/**
 * One cluster, with the answer read and rewritten: the app's namespace
 * mapped to the cluster's and back, objects of a spread set marked with
 * the cluster they live in, versions pinned to the cluster that gave them.
 * Watches are rewritten event by event (`transformed_stream.ts`); JSON and
 * protobuf alike, an app that asks for protobuf first gets protobuf.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import type { RequestInfo } from "../kube/request_info.ts";
import type { Plan } from "../routing/router.ts";
import type { Outcome } from "../proxy/transport.ts";
import { readBody } from "../clusters/upstream_call.ts";
import { failureStatus, statusResponse, writeStatus } from "../kube/status.ts";
import { type FanoutCall, send } from "./fanout.ts";
import { notThisCluster, pinnedTarget, stampList } from "./pinning.ts";
import { goneEvent } from "./watch_merge.ts";
import { rewriteAnswer, rewriteJsonBytes } from "./answer_rewrite.ts";
import {
  isProtobuf,
  prefersProtobuf,
  PROTOBUF_ACCEPT,
  ProtobufError,
  rewriteProtobufBytes,
} from "./protobuf_answer.ts";
import { relayWatch } from "./transformed_stream.ts";

/**
 * One cluster, with the answer rewritten (namespace mapping, marks). On a
 * first-healthy set an unreachable cluster is skipped for the next (the
 * body, when there is one, was read whole); a version the app sends is
 * turned into that cluster's own, or answered 410 when it is not its.
 */
export async function forwardTransformed(
  req: IncomingMessage,
  res: ServerResponse,
  info: RequestInfo,
  args: {
    plan: Plan & { kind: "one" };
    body?: Uint8Array;
    call: FanoutCall;
    /** Bytes of the answer the observers keep (audit at RequestResponse). */
    capture?: number;
  },
): Promise<{ cluster: string; outcome: Outcome }> {
  const { plan, call } = args;
  const aborter = new AbortController();
  res.on("close", () => aborter.abort());
  // An app that asks for protobuf first gets it (rewritten on its stub).
  const headers = prefersProtobuf(req.headers.accept)
    ? { ...call.headers, accept: PROTOBUF_ACCEPT }
    : call.headers;
  const candidates = [plan.cluster, ...(plan.fallbacks ?? [])];
  for (const [i, cluster] of candidates.entries()) {
    const target = pinnedTarget(req.url ?? "/", cluster, call.namespace);
    if (target === undefined) {
      return { cluster, outcome: expired(res, info, cluster) };
    }
    let upRes: IncomingMessage;
    try {
      upRes = await send(call, cluster, {
        method: req.method ?? "GET",
        target,
        headers,
        body: args.body,
        dedicated: info.verb === "watch",
        connectTimeoutMs: call.connectTimeoutMs,
        signal: aborter.signal,
      });
    } catch (error) {
      call.onClusterError(cluster, error as Error);
      if (i < candidates.length - 1) continue;
      return { cluster, outcome: unreachable(res, cluster, error as Error) };
    }
    const outcome = await relayAnswer(upRes, res, {
      info,
      call,
      cluster,
      decorate: plan.decorate === true,
      capture: args.capture,
    });
    return {
      cluster,
      outcome: { ...outcome, bytesIn: args.body?.length ?? 0 },
    };
  }
  throw new Error("unreachable: a plan has a cluster");
}

/** The answer of the cluster that served, rewritten for the app. */
async function relayAnswer(
  upRes: IncomingMessage,
  res: ServerResponse,
  args: {
    info: RequestInfo;
    call: FanoutCall;
    cluster: string;
    decorate: boolean;
    capture?: number;
  },
): Promise<Outcome> {
  const status = upRes.statusCode ?? 502;
  const mark = args.decorate ? args.cluster : undefined;
  const edit = (value: unknown) => {
    rewriteAnswer(value, { namespace: args.call.namespace, cluster: mark });
    if (mark === undefined) return;
    stampList(value, mark);
    // a watch event's Table (kubectl get -w) carries a version of its own
    stampList((value as { object?: unknown } | null)?.object, mark);
  };
  if (args.info.verb === "watch" && status === 200) {
    return { status, bytesIn: 0, bytesOut: await relayWatch(upRes, res, edit) };
  }
  const out = await relayBuffered(upRes, res, { edit, cluster: args.cluster });
  if (typeof out === "number") {
    return { status: 502, bytesIn: 0, bytesOut: out };
  }
  // the observers' bounded copy of the answer (audit's responseObject)
  const copy = args.capture !== undefined && args.capture > 0
    ? {
      responseBody: out.slice(0, args.capture),
      responseBodyCut: out.length > args.capture,
    }
    : {};
  return { status, bytesIn: 0, bytesOut: out.length, ...copy };
}

/**
 * The app's version is not the serving cluster's: as kube-apiserver
 * answers a version it cannot serve (a watch: 200 and one ERROR event).
 */
function expired(
  res: ServerResponse,
  info: RequestInfo,
  cluster: string,
): Outcome {
  const message = notThisCluster(cluster);
  if (info.verb !== "watch") {
    return writeStatus(res, 410, "Expired", `mca: ${message}`);
  }
  const line = JSON.stringify(goneEvent(message)) + "\n";
  res.writeHead(200, { "content-type": "application/json" });
  res.end(line);
  return { status: 200, bytesIn: 0, bytesOut: line.length };
}

/** A protobuf answer MCA cannot rewrite: a 502, as a gateway that got a bad answer. */
function unrewritable(
  res: ServerResponse,
  cluster: string,
  error: ProtobufError,
): number {
  const { headers, body } = statusResponse(
    failureStatus(
      502,
      "InternalError",
      `mca: cluster ${cluster} answered a protobuf body mca cannot rewrite (${error.message}); ask for JSON (Accept: application/json)`,
    ),
  );
  res.writeHead(502, headers).end(body);
  return body.length;
}

/** The cluster could not be reached: a 503 the SDK retries. */
function unreachable(
  res: ServerResponse,
  cluster: string,
  error: Error,
): Outcome {
  const { headers, body } = statusResponse(
    failureStatus(
      503,
      "ServiceUnavailable",
      `mca: cluster ${cluster} is unreachable: ${error.message}`,
    ),
    { retryAfterSeconds: 1 },
  );
  res.writeHead(503, headers).end(body);
  return { status: 503, bytesIn: 0, bytesOut: body.length, unreachable: true };
}

/**
 * Any other answer, read whole and rewritten: the bytes written, or, for a
 * protobuf answer MCA cannot rewrite, the length of the 502 naming the
 * cluster that it sent instead (never passed on half-converted).
 */
async function relayBuffered(
  upRes: IncomingMessage,
  res: ServerResponse,
  args: { edit: (value: unknown) => void; cluster: string },
): Promise<Uint8Array | number> {
  const raw = await readBody(upRes);
  let out: Uint8Array;
  if (isProtobuf(String(upRes.headers["content-type"] ?? ""))) {
    try {
      out = rewriteProtobufBytes(raw, args.edit);
    } catch (error) {
      if (!(error instanceof ProtobufError)) throw error;
      return unrewritable(res, args.cluster, error);
    }
  } else {
    out = rewriteJsonBytes(raw, args.edit);
  }
  res.writeHead(upRes.statusCode ?? 502, {
    "content-type": String(upRes.headers["content-type"] ?? "application/json"),
    "content-length": out.length,
    ...(upRes.headers.warning ? { warning: upRes.headers.warning } : {}),
  });
  res.end(out);
  return out;
}
