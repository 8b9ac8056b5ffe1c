/**
 * Reads answered by several clusters at once, merged so that an SDK sees
 * one API server.
 *
 * - LIST: every cluster is asked; items are concatenated, each marked with
 *   `mca.io/cluster`; the list's resourceVersion is composite. With `limit`
 *   the clusters are paged one after the other behind one continue token.
 * - WATCH: one upstream watch per cluster, merged into one stream; every
 *   event carries the composite version of all clusters so far, so that a
 *   client resuming from any event misses nothing; an ERROR event (e.g.
 *   `410 Gone`) or the end of any cluster's stream ends the merged watch,
 *   and the client relists or rewatches as it would against one server.
 * - by-name calls on a spread set: asked cluster by cluster until one has
 *   the object.
 *
 * A cluster that cannot be reached is left out and named in a `Warning`
 * header (as kube-apiserver warns), never hidden and never fatal.
 *
 * @module
 */

import type {
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from "node:http";
import {
  type CallOptions,
  callUpstream,
  readJson,
} from "../clusters/upstream_call.ts";
import type { UpstreamObservation } from "../observe/observer.ts";
import type { Upstream } from "../clusters/upstream.ts";
import { writeStatus } from "../kube/status.ts";
import type { Outcome } from "../proxy/transport.ts";
import {
  clusterTarget,
  type NamespaceMap,
  queryParam,
  versionFor,
} from "./fanout_request.ts";
import { warning } from "./answer_rewrite.ts";
import {
  finishPage,
  isPaged,
  type ListAnswer,
  mergeListAnswers,
  pageParams,
  pageState,
} from "./list_merge.ts";

/** What a merged call needs. */
export interface FanoutCall {
  req: IncomingMessage;
  res: ServerResponse;
  /** Headers for upstream (credentials already removed). */
  headers: OutgoingHttpHeaders;
  /** The app's namespace, when a rule maps it to another on the clusters. */
  namespace?: NamespaceMap;
  clusters: Array<{ name: string; upstream: Upstream }>;
  /** Clusters of the set that are known to be down. */
  missing: string[];
  connectTimeoutMs: number;
  /** Called when a cluster fails during the call. */
  onClusterError(cluster: string, error: Error): void;
  /** The call's observation of one upstream request. */
  observe?(cluster: string, target: string): UpstreamObservation | undefined;
}

/** One upstream request of a merged call, seen by the call's observers. */
export function send(
  call: FanoutCall,
  cluster: string,
  options: CallOptions,
): Promise<IncomingMessage> {
  const { upstream } = call.clusters.find((c) => c.name === cluster)!;
  return callUpstream(upstream, {
    ...options,
    observation: call.observe?.(cluster, options.target),
  });
}

type Json = Record<string, unknown>;

/** Writes a JSON answer; returns the bytes written, for the call's outcome. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
): number {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
  return Buffer.byteLength(text);
}

/** The request target for one cluster: its version, its continue, its namespace. */
export function targetFor(
  call: FanoutCall,
  params: Record<string, string | undefined>,
): string {
  return clusterTarget(call.req.url ?? "/", params, call.namespace);
}

/** Merged LIST (and deletecollection, whose answer is a list too). */
export async function fanoutList(call: FanoutCall): Promise<Outcome> {
  const url = call.req.url ?? "/";
  if (isPaged(call.req.method, url)) return await pagedList(call);
  const answers = await Promise.all(
    call.clusters.map(({ name }) => listOne(call, name)),
  );
  const merged = mergeListAnswers(answers, {
    missing: call.missing,
    namespace: call.namespace,
  });
  if (merged.kind === "none") {
    return writeStatus(call.res, 503, "ServiceUnavailable", merged.message);
  }
  if (merged.kind === "refused") {
    // A refusal (403, 410...) is the answer: a partial list would mislead.
    return {
      status: merged.status,
      bytesIn: 0,
      bytesOut: sendJson(call.res, merged.status, merged.body),
    };
  }
  const headers = merged.warning ? { warning: merged.warning } : {};
  return {
    status: 200,
    bytesIn: 0,
    bytesOut: sendJson(call.res, 200, merged.body, headers),
  };
}

/** One cluster's answer to an unpaged LIST; status 0 when it failed. */
async function listOne(call: FanoutCall, name: string): Promise<ListAnswer> {
  try {
    const res = await send(call, name, {
      method: call.req.method ?? "GET",
      target: targetFor(call, {
        resourceVersion: versionFor(call.req.url ?? "/", name),
      }),
      headers: call.headers,
      connectTimeoutMs: call.connectTimeoutMs,
    });
    return {
      name,
      status: res.statusCode ?? 502,
      body: await readJson(res) as Json | undefined,
    };
  } catch (error) {
    call.onClusterError(name, error as Error);
    return { name, status: 0, body: undefined };
  }
}

/** LIST with `limit`: the clusters are paged in order behind one token. */
async function pagedList(call: FanoutCall): Promise<Outcome> {
  const url = call.req.url ?? "/";
  const names = call.clusters.map((c) => c.name);
  const state = pageState(queryParam(url, "continue"), names);
  if (!state) {
    return writeStatus(
      call.res,
      410,
      "Expired",
      "mca: the continue token is not valid for the current set of clusters; list again from the start",
    );
  }
  const res = await send(call, state.cluster, {
    method: "GET",
    target: targetFor(call, pageParams(url, state)),
    headers: call.headers,
    connectTimeoutMs: call.connectTimeoutMs,
  }).catch((error) => {
    call.onClusterError(state.cluster, error);
    return undefined;
  });
  if (!res) {
    return writeStatus(
      call.res,
      503,
      "ServiceUnavailable",
      `mca: cluster ${state.cluster} is unavailable`,
    );
  }
  const status = res.statusCode ?? 502;
  const body = await readJson(res) as Json | undefined;
  if (status >= 300 || !body) {
    return { status, bytesIn: 0, bytesOut: sendJson(call.res, status, body) };
  }
  finishPage(body, { state, clusters: names, namespace: call.namespace });
  const headers = call.missing.length > 0
    ? { warning: warning(call.missing) }
    : {};
  return {
    status: 200,
    bytesIn: 0,
    bytesOut: sendJson(call.res, 200, body, headers),
  };
}
