/**
 * A merged LIST with `limit`/`continue`: the clusters are paged one after
 * the other behind one continue token, and every page carries the same
 * full vector. client-go's pager keeps the first page's version and its
 * informer watches from it, so the first page fixes a snapshot of every
 * cluster (a cheap `limit=1` LIST of each other cluster, asked beside the
 * page) and each later cluster is read at exactly its snapshot version.
 *
 * @module
 */

import { writeStatus } from "../kube/status.ts";
import type { VersionVector } from "../kube/resource_version.ts";
import type { Outcome } from "../proxy/transport.ts";
import { listRefusal, queryParam, snapshotQuery } from "./fanout_request.ts";
import { finishPage, pageParams, pageState } from "./list_merge.ts";
import { warning } from "./answer_rewrite.ts";
import { type FanoutCall, send, targetFor } from "./fanout_call.ts";
import { readListAnswer, sendAnswer } from "./protobuf_answer.ts";

type Json = Record<string, unknown>;

/** One cluster's answer MCA read; status 0 when it could not be reached. */
interface Read {
  cluster: string;
  status: number;
  body: Json | undefined;
}

/** LIST with `limit`: the clusters are paged in order behind one token. */
export async function pagedList(call: FanoutCall): Promise<Outcome> {
  const url = call.req.url ?? "/";
  const names = call.clusters.map((c) => c.name);
  const token = queryParam(url, "continue");
  const state = pageState(token, names);
  const refusal = token ? undefined : listRefusal(url, names);
  if (!state || refusal) {
    return writeStatus(
      call.res,
      410,
      "Expired",
      refusal ??
        "mca: the continue token is not valid for the current set of clusters; list again from the start",
    );
  }
  const page = read(call, state.cluster, pageParams(url, state));
  const others = token ? [] : names.filter((n) => n !== state.cluster);
  const snapshots = others.map((name) => snapshotOf(call, name));
  const answers = [await page, ...await Promise.all(snapshots)];
  const failed = answers.find((a) => a.status === 0) ??
    answers.find((a) => a.status >= 300 || !a.body);
  if (failed?.status === 0) {
    return writeStatus(
      call.res,
      503,
      "ServiceUnavailable",
      `mca: cluster ${failed.cluster} is unavailable; a page without it would not match the others`,
    );
  }
  if (failed) {
    return {
      status: failed.status,
      bytesIn: 0,
      bytesOut: sendAnswer(call.res, failed.status, failed.body),
    };
  }
  const versions: VersionVector = { ...state.versions };
  for (const answer of answers.slice(1)) {
    versions[answer.cluster] = listVersion(answer.body);
  }
  const body = answers[0].body!;
  finishPage(body, {
    state: { ...state, versions },
    clusters: names,
    namespace: call.namespace,
  });
  // clusters the call policy kept out are named on every page, as unpaged
  const denied = call.denied ?? [];
  const headers = denied.length > 0 ? { warning: warning([], denied) } : {};
  return {
    status: 200,
    bytesIn: 0,
    bytesOut: sendAnswer(call.res, 200, body, headers),
  };
}

/** One LIST of one cluster, read whole; status 0 when it failed. */
async function read(
  call: FanoutCall,
  cluster: string,
  params: Record<string, string | undefined>,
): Promise<Read> {
  try {
    const res = await send(call, cluster, {
      method: "GET",
      target: targetFor(call, params),
      headers: call.headers,
      connectTimeoutMs: call.connectTimeoutMs,
    });
    return { cluster, ...await readListAnswer(res, cluster) };
  } catch (error) {
    call.onClusterError(cluster, error as Error);
    return { cluster, status: 0, body: undefined };
  }
}

/** A cluster's snapshot version for the first page: known (Exact) or read. */
function snapshotOf(call: FanoutCall, cluster: string): Promise<Read> {
  const query = snapshotQuery(call.req.url ?? "/", cluster);
  if ("version" in query) {
    return Promise.resolve({
      cluster,
      status: 200,
      body: { metadata: { resourceVersion: query.version } },
    });
  }
  return read(call, cluster, query.params);
}

function listVersion(body: Json | undefined): string {
  const meta = body?.metadata as Json | undefined;
  return typeof meta?.resourceVersion === "string" ? meta.resourceVersion : "";
}
