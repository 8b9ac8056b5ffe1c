/**
 * Forwarding a call to one cluster, streamed untouched, with failover on a
 * first-healthy set when the call can be sent again.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import type { RequestInfo } from "../kube/request_info.ts";
import type { Plan } from "../routing/router.ts";
import { forwardHttp, type Outcome, type Target } from "../proxy/transport.ts";
import type { UpstreamAuth } from "../clusters/upstream.ts";
import { forwardFetch } from "../proxy/fetch_forward.ts";
import { respondFailure } from "../proxy/failure.ts";
import { hasBody, readRequest, readsWholeBody } from "./request_body.ts";
import { isLongLived, isWatch, mayBeLarge } from "./stream_kind.ts";
import type { Dispatched, DispatchOptions } from "./dispatch_options.ts";

const EMPTY = new Uint8Array(0);

/**
 * Forward: one cluster, streamed untouched. A call whose body is known
 * (none, or read) can be sent again: on a first-healthy set, an
 * unreachable cluster is skipped at once.
 */
export async function forwardOne(
  req: IncomingMessage,
  res: ServerResponse,
  info: RequestInfo,
  args: {
    plan: Plan & { kind: "one" };
    body?: Uint8Array;
    options: DispatchOptions;
  },
): Promise<Dispatched> {
  const { plan, options } = args;
  let body = args.body;
  if (body === undefined && readsWholeBody(req)) {
    body = await readRequest(req);
  }
  const replayable = body !== undefined || !hasBody(req);
  const candidates = replayable
    ? [plan.cluster, ...(plan.fallbacks ?? [])]
    : [plan.cluster];
  let cluster = plan.cluster;
  let outcome!: Outcome;
  for (const [i, candidate] of candidates.entries()) {
    const upstream = options.state.registry.get(candidate);
    const last = i === candidates.length - 1;
    cluster = candidate;
    const auth = await upstream.auth();
    const target = targetOf(req, info, {
      url: upstream.url,
      auth,
      cluster: candidate,
      body: body ?? (replayable ? EMPTY : undefined),
      options,
    });
    outcome = await send(req, res, { info, auth, target, body });
    if (outcome.unreachable) {
      options.state.registry.setHealthy(candidate, false, outcome.error);
    }
    if (!outcome.unreachable || last) break;
  }
  if (outcome.failure) {
    const answered = respondFailure(res, outcome.failure);
    outcome.status = answered.status;
    outcome.bytesOut += answered.bytesOut;
  }
  // A body read here is the body sent: hand it to the observers too.
  if (body !== undefined) outcome.requestBody ??= body;
  return { cluster, outcome };
}

/**
 * One try, on the path its kind takes: a watch through the cluster's
 * stream clients (many watches on one HTTP/2 connection), a read that may
 * be large through `fetch` (back-pressure), anything else — and every call
 * where `fetch` cannot express the TLS settings — through `node:https`.
 */
async function send(
  req: IncomingMessage,
  res: ServerResponse,
  args: {
    info: RequestInfo;
    auth: UpstreamAuth;
    target: Target;
    body: Uint8Array | undefined;
  },
): Promise<Outcome> {
  const { info, auth, target } = args;
  if (auth.streams && isWatch(req, info, args.body)) {
    const lease = auth.streams.acquire();
    try {
      return await forwardFetch(req, res, {
        ...target,
        client: lease.client,
        watch: true,
      });
    } finally {
      lease.release();
    }
  }
  if (auth.client && mayBeLarge(req, info, args.body)) {
    return await forwardFetch(req, res, { ...target, client: auth.client });
  }
  return await forwardHttp(req, res, target);
}

/** Where one try of the call goes, and what the observers want of it. */
function targetOf(
  req: IncomingMessage,
  info: RequestInfo,
  to: {
    url: URL;
    auth: UpstreamAuth;
    cluster: string;
    body?: Uint8Array;
    options: DispatchOptions;
  },
): Target {
  const { options } = to;
  const stream = isLongLived(info, req.url ?? "");
  return {
    url: to.url,
    auth: to.auth,
    connectTimeoutMs: options.connectTimeoutMs,
    dedicated: stream,
    body: to.body,
    captureBodyBytes: options.observation?.requestBodyBytes,
    // Streams (watches, followed logs) are never copied.
    captureResponseBytes: stream
      ? undefined
      : options.observation?.responseBodyBytes,
    headTimeoutMs: options.headTimeoutMs,
    observation: options.observation?.upstream?.({
      cluster: to.cluster,
      method: req.method ?? "GET",
      target: req.url ?? "/",
      info,
    }),
  };
}
