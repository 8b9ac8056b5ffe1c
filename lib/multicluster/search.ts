/**
 * By-name calls on a spread set (get, update, patch, apply, delete of one
 * object) whose body does not name the cluster: the object lives in one
 * cluster of the set, so every cluster is asked at once where it is.
 *
 * - A read answers with the cluster that holds the object; when two hold
 *   the same name, the first in rule order answers, with a `Warning`.
 * - A write is sent only to the cluster that holds its object (a GET of
 *   every cluster first: an apply never answers 404, it creates, so asking
 *   in order would make a copy in the first cluster). An object held
 *   nowhere is created, by an apply or an update, where a create would go
 *   (the rule's next turn); other writes get the 404. Two holders: `409`,
 *   since MCA cannot tell which one the app means. A cluster that cannot be
 *   asked when no other holds the object: `503` (it may hold it).
 *
 * @module
 */

import type { RequestInfo } from "../kube/request_info.ts";
import { writeStatus } from "../kube/status.ts";
import type { Outcome } from "../proxy/transport.ts";
import { type FanoutCall, sendJson, targetFor } from "./fanout_call.ts";
import { parseJsonBytes, rewriteAnswer } from "./answer_rewrite.ts";
import {
  type Answer,
  ask,
  askAll,
  collisionWarning,
  describeObject,
  type Located,
  objectTarget,
} from "./locate.ts";
import { CLUSTER_ANNOTATION } from "./rewrite.ts";

/** What a by-name call needs besides the merged call. */
export interface SearchOptions {
  info: RequestInfo;
  /** The cluster a create of this object would go to (takes a turn). */
  createCluster?: () => string | undefined;
}

/** A by-name call on a spread set, served by the cluster that holds the object. */
export async function searchByName(
  call: FanoutCall,
  body: Uint8Array | undefined,
  options: SearchOptions,
): Promise<Outcome> {
  const method = call.req.method ?? "GET";
  if (method === "GET" || method === "HEAD") {
    return await readByName(call, options.info);
  }
  return {
    ...await writeByName(call, body, options),
    bytesIn: body?.length ?? 0,
  };
}

/** A read: every cluster asked the same call; the first holder answers. */
async function readByName(
  call: FanoutCall,
  info: RequestInfo,
): Promise<Outcome> {
  const method = call.req.method ?? "GET";
  const located = await askAll(call, { method, target: targetFor(call, {}) });
  const [first, ...others] = located.holders;
  if (first) {
    const clusters = located.holders.map((h) => h.cluster);
    const warning: Record<string, string> = others.length > 0
      ? { warning: collisionWarning(info, clusters) }
      : {};
    const outcome = answer(call, first, warning);
    return others.length > 0 ? { ...outcome, collisions: 1 } : outcome;
  }
  return notHeld(call, info, located);
}

/** Nobody holds it: a refusal, a cluster that could not say, or the 404. */
function notHeld(call: FanoutCall, info: RequestInfo, located: Located) {
  if (located.refused.length > 0) return relay(call, located.refused[0]);
  if (located.unreachable.length > 0) {
    return writeStatus(
      call.res,
      503,
      "ServiceUnavailable",
      `mca: ${describeObject(info)} is in no reachable cluster, and cluster ${
        located.unreachable.join(", ")
      } cannot be asked; try again`,
    );
  }
  if (located.absent.length > 0) return relay(call, located.absent.at(-1)!);
  return writeStatus(
    call.res,
    503,
    "ServiceUnavailable",
    "mca: no cluster of the set answered",
  );
}

/** A write: found first, then sent to the one cluster that holds it. */
async function writeByName(
  call: FanoutCall,
  body: Uint8Array | undefined,
  options: SearchOptions,
): Promise<Outcome> {
  const { info } = options;
  const located = await askAll(call, {
    method: "GET",
    target: objectTarget(call, info),
  });
  const holders = located.holders.map((h) => h.cluster);
  if (holders.length > 1) {
    return writeStatus(
      call.res,
      409,
      "Conflict",
      `mca: ${describeObject(info)} exists in clusters ${
        holders.join(", ")
      }; name the one to change with the ${CLUSTER_ANNOTATION} annotation (or the object's resourceVersion as mca gave it) in the body`,
    );
  }
  let cluster: string | undefined = holders[0];
  if (cluster === undefined) {
    const upserts = info.subresource === "" &&
      (isApply(call) || info.verb === "update");
    if (
      !upserts || located.refused.length > 0 || located.unreachable.length > 0
    ) {
      return notHeld(call, info, located);
    }
    cluster = options.createCluster?.() ?? call.clusters[0].name;
  }
  const method = call.req.method ?? "POST";
  const answered = await ask(call, cluster, {
    method,
    target: targetFor(call, {}),
    body,
  });
  if (!answered) {
    return writeStatus(
      call.res,
      503,
      "ServiceUnavailable",
      `mca: cluster ${cluster}, which holds ${
        describeObject(info)
      }, cannot be reached; try again`,
    );
  }
  return answer(call, answered);
}

/** A server-side apply (`PATCH` with an apply-patch body): it creates. */
function isApply(call: FanoutCall): boolean {
  return String(call.req.headers["content-type"] ?? "").includes(
    "apply-patch",
  );
}

/** A cluster's answer for the app: a JSON success marked and mapped, else as it is. */
function answer(
  call: FanoutCall,
  answered: Answer,
  headers: Record<string, string> = {},
): Outcome {
  const parsed = parseJsonBytes(answered.body);
  if (parsed !== undefined && answered.status < 300) {
    rewriteAnswer(parsed, {
      namespace: call.namespace,
      cluster: answered.cluster,
    });
    return {
      status: answered.status,
      bytesIn: 0,
      bytesOut: sendJson(call.res, answered.status, parsed, headers),
    };
  }
  return relay(call, answered, headers);
}

/** Passes an answer on as it is. */
function relay(
  call: FanoutCall,
  answered: Answer,
  headers: Record<string, string> = {},
): Outcome {
  call.res.writeHead(answered.status, { ...answered.headers, ...headers })
    .end(answered.body);
  return {
    status: answered.status,
    bytesIn: 0,
    bytesOut: answered.body.length,
  };
}
