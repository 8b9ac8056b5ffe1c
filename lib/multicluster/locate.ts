/**
 * Where an object of a spread set lives: every cluster of the set is asked
 * at once, so that a name held by two clusters (a collision, e.g. every
 * namespace's `kube-root-ca.crt`) is seen instead of the first one winning,
 * and a write can go to the one cluster that holds its object.
 *
 * @module
 */

import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import { readBody } from "../clusters/upstream_call.ts";
import type { RequestInfo } from "../kube/request_info.ts";
import { type FanoutCall, send } from "./fanout_call.ts";
import { mapTarget } from "./fanout_request.ts";

/** One cluster's whole answer to a by-name call. */
export interface Answer {
  cluster: string;
  status: number;
  body: Uint8Array;
  headers: OutgoingHttpHeaders;
}

/** What the clusters of a set said about one name. */
export interface Located {
  /** Clusters that answered 2xx, in rule order. */
  holders: Answer[];
  /** Clusters that answered 404. */
  absent: Answer[];
  /** Clusters that answered anything else (403, 5xx...), in rule order. */
  refused: Answer[];
  /** Clusters that could not be reached, and those known to be down. */
  unreachable: string[];
}

/** One call to one cluster, its answer read whole; undefined when unreachable. */
export async function ask(
  call: FanoutCall,
  cluster: string,
  request: { method: string; target: string; body?: Uint8Array },
): Promise<Answer | undefined> {
  let res: IncomingMessage;
  try {
    res = await send(call, cluster, {
      ...request,
      headers: call.headers,
      connectTimeoutMs: call.connectTimeoutMs,
    });
  } catch (error) {
    call.onClusterError(cluster, error as Error);
    return undefined;
  }
  return {
    cluster,
    status: res.statusCode ?? 502,
    body: await readBody(res),
    headers: {
      "content-type": String(res.headers["content-type"] ?? "application/json"),
    },
  };
}

/**
 * Asks every cluster of the call the same request at once and sorts the
 * answers. `missing` clusters (known to be down) are not asked; they count
 * as unreachable, since they may hold the name.
 */
export async function askAll(
  call: FanoutCall,
  request: { method: string; target: string; body?: Uint8Array },
): Promise<Located> {
  const answers = await Promise.all(
    call.clusters.map(({ name }) => ask(call, name, request)),
  );
  const located: Located = {
    holders: [],
    absent: [],
    refused: [],
    unreachable: [...call.missing],
  };
  answers.forEach((answer, i) => {
    if (!answer) located.unreachable.push(call.clusters[i].name);
    else if (answer.status < 300) located.holders.push(answer);
    else if (answer.status === 404) located.absent.push(answer);
    else located.refused.push(answer);
  });
  return located;
}

/**
 * The path of the object a by-name call is about, without its subresource
 * and query (`.../pods/p/status?fieldManager=x` → `.../pods/p`), with the
 * namespace mapped: what a GET asks to tell where the object lives.
 */
export function objectTarget(call: FanoutCall, info: RequestInfo): string {
  const url = call.req.url ?? "/";
  const q = url.indexOf("?");
  const segments = (q < 0 ? url : url.slice(0, q)).split("/");
  const drop = Math.max(0, info.parts.length - 2);
  const path = segments.slice(0, segments.length - drop).join("/");
  return mapTarget(path, call.namespace);
}

/** `configmaps ns/name`: the object a by-name call is about, for messages. */
export function describeObject(info: RequestInfo): string {
  const resource = info.apiGroup
    ? `${info.resource}.${info.apiGroup}`
    : info.resource;
  const name = info.namespace ? `${info.namespace}/${info.name}` : info.name;
  return `${resource} ${name}`;
}

/** The `Warning` header naming the clusters that hold the same name. */
export function collisionWarning(
  info: RequestInfo,
  clusters: string[],
): string {
  return `299 - "mca: ${describeObject(info)} exists in clusters ${
    clusters.join(", ")
  }; this answer is ${
    clusters[0]
  }'s (name one with the mca.io/cluster annotation, or list with the label selector mca.io/cluster=NAME)"`;
}
