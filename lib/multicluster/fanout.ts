/**
 * A merged LIST (and deletecollection, whose answer is a list too) on a
 * spread set: every cluster is asked; items are concatenated, each marked
 * with `mca.io/cluster`; the list's resourceVersion is composite. With
 * `limit` the clusters are paged (`paged_list.ts`). The answer is complete
 * or an error: a cluster that cannot answer makes it a 503 naming it
 * (informers take a smaller 200 for deletions), unless the rule has
 * `partial: true`, which leaves it out with a `Warning`.
 *
 * @module
 */

import { writeStatus } from "../kube/status.ts";
import type { Outcome } from "../proxy/transport.ts";
import { listRefusal, versionFor } from "./fanout_request.ts";
import {
  incompleteMessage,
  isPaged,
  type ListAnswer,
  mergeListAnswers,
} from "./list_merge.ts";
import { type FanoutCall, send, targetFor } from "./fanout_call.ts";
import { pagedList } from "./paged_list.ts";
import {
  readListAnswer,
  sendAnswer,
  withAnswerFormat,
} from "./protobuf_answer.ts";

export { type FanoutCall, send, sendJson, targetFor } from "./fanout_call.ts";

type Json = Record<string, unknown>;

/** Merged LIST (and deletecollection, whose answer is a list too). */
export async function fanoutList(asked: FanoutCall): Promise<Outcome> {
  // protobuf answers for an app that asks for it first, merged on their stubs
  const call = withAnswerFormat(asked);
  const url = call.req.url ?? "/";
  const paged = isPaged(call.req.method, url);
  if (call.missing.length > 0 && (!call.partial || paged)) {
    // Nothing is asked (nor deleted) when the answer cannot be complete; a
    // page cannot leave a cluster out and stay consistent with the others.
    return writeStatus(
      call.res,
      503,
      "ServiceUnavailable",
      incompleteMessage(call.missing),
    );
  }
  if (paged) return await pagedList(call);
  const refusal = listRefusal(url, call.clusters.map((c) => c.name));
  if (refusal) return writeStatus(call.res, 410, "Expired", refusal);
  const answers = await Promise.all(
    call.clusters.map(({ name }) => listOne(call, name)),
  );
  const merged = mergeListAnswers(answers, {
    missing: call.missing,
    namespace: call.namespace,
    partial: call.partial,
    denied: call.denied,
  });
  if (merged.kind === "none") {
    return writeStatus(call.res, 503, "ServiceUnavailable", merged.message);
  }
  if (merged.kind === "refused") {
    // A refusal (403, 410...) is the answer: a partial list would mislead.
    return {
      status: merged.status,
      bytesIn: 0,
      bytesOut: sendAnswer(call.res, merged.status, merged.body),
    };
  }
  const headers = merged.warning ? { warning: merged.warning } : {};
  return {
    status: 200,
    bytesIn: 0,
    bytesOut: sendAnswer(call.res, 200, merged.body, headers),
    ...(merged.collisions ? { collisions: merged.collisions } : {}),
  };
}

/** One cluster's answer to an unpaged LIST; status 0 when it failed. */
async function listOne(call: FanoutCall, name: string): Promise<ListAnswer> {
  try {
    const res = await send(call, name, {
      method: call.req.method ?? "GET",
      // whole lists: a cluster's own page would be cut off here
      target: targetFor(call, {
        resourceVersion: versionFor(call.req.url ?? "/", name),
        limit: undefined,
      }),
      headers: call.headers,
      connectTimeoutMs: call.connectTimeoutMs,
    });
    return { name, ...await readListAnswer(res, name) };
  } catch (error) {
    call.onClusterError(name, error as Error);
    return { name, status: 0, body: undefined };
  }
}
