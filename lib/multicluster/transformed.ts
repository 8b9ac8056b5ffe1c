/**
 * One cluster, with the answer read and rewritten: the app's namespace
 * mapped to the cluster's and back, objects of a spread set marked with
 * the cluster they live in. Watches are rewritten event by event.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import type { RequestInfo } from "../kube/request_info.ts";
import type { Plan } from "../routing/router.ts";
import type { Outcome } from "../proxy/transport.ts";
import { readBody, readLines } from "../clusters/upstream_call.ts";
import { failureStatus, statusResponse, writeStatus } from "../kube/status.ts";
import { type FanoutCall, send } from "./fanout.ts";
import { notThisCluster, pinnedContinue, pinnedTarget } from "./pinning.ts";
import { goneEvent } from "./watch_merge.ts";
import { encodeResourceVersion } from "../kube/resource_version.ts";
import {
  rewriteAnswer,
  rewriteJsonBytes,
  rewriteJsonLine,
} from "./answer_rewrite.ts";

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
        headers: call.headers,
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
      cluster: plan.decorate ? cluster : undefined,
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
    cluster?: string;
    capture?: number;
  },
): Promise<Outcome> {
  const status = upRes.statusCode ?? 502;
  const edit = (value: unknown) => {
    rewriteAnswer(value, {
      namespace: args.call.namespace,
      cluster: args.cluster,
    });
    if (args.cluster === undefined) return;
    stampList(value, args.cluster);
    // a watch event's Table (kubectl get -w) carries a version of its own
    stampList((value as { object?: unknown } | null)?.object, args.cluster);
  };
  if (args.info.verb === "watch" && status === 200) {
    return { status, bytesIn: 0, bytesOut: await relayWatch(upRes, res, edit) };
  }
  const out = await relayBuffered(upRes, res, edit);
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

/**
 * A list's (or Table's) own version, as its items': `{cluster: rv}`, so
 * that a watch or relist from it is pinned to the cluster that gave it.
 */
function stampList(body: unknown, cluster: string): void {
  if (body === null || typeof body !== "object") return;
  const list = body as Record<string, unknown>;
  if (!Array.isArray(list.items) && !Array.isArray(list.rows)) return;
  const meta = list.metadata as Record<string, unknown> | undefined;
  if (
    typeof meta?.resourceVersion === "string" && meta.resourceVersion !== ""
  ) {
    meta.resourceVersion = encodeResourceVersion({
      [cluster]: meta.resourceVersion,
    });
  }
  if (typeof meta?.continue === "string" && meta.continue !== "") {
    meta.continue = pinnedContinue(cluster, meta.continue);
  }
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

/** A watch, rewritten event by event; returns the characters written. */
async function relayWatch(
  upRes: IncomingMessage,
  res: ServerResponse,
  edit: (value: unknown) => void,
): Promise<number> {
  let bytesOut = 0;
  res.writeHead(200, { "content-type": "application/json" });
  res.flushHeaders();
  try {
    for await (const line of readLines(upRes)) {
      const text = rewriteJsonLine(line, edit);
      if (text === undefined) continue;
      bytesOut += text.length;
      res.write(text);
    }
  } catch {
    // the app or the cluster went away: end the stream
  }
  res.end();
  return bytesOut;
}

/** Any other answer, read whole and rewritten; returns the bytes written. */
async function relayBuffered(
  upRes: IncomingMessage,
  res: ServerResponse,
  edit: (value: unknown) => void,
): Promise<Uint8Array> {
  const out = rewriteJsonBytes(await readBody(upRes), edit);
  res.writeHead(upRes.statusCode ?? 502, {
    "content-type": String(upRes.headers["content-type"] ?? "application/json"),
    "content-length": out.length,
    ...(upRes.headers.warning ? { warning: upRes.headers.warning } : {}),
  });
  res.end(out);
  return out;
}
