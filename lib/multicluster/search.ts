/**
 * By-name calls on a spread set (get, update, patch, delete of one object):
 * the object lives in one cluster of the set, so the clusters are asked in
 * order and the first that has it answers.
 *
 * @module
 */

import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import { readBody } from "../clusters/upstream_call.ts";
import { writeStatus } from "../kube/status.ts";
import type { Outcome } from "../proxy/transport.ts";
import { type FanoutCall, send, sendJson, targetFor } from "./fanout.ts";
import { parseJsonBytes, rewriteAnswer } from "./answer_rewrite.ts";

/** One cluster's whole answer to a by-name call. */
interface Answer {
  status: number;
  body: Uint8Array;
  headers: OutgoingHttpHeaders;
}

/** A by-name call on a spread set: the first cluster that has the object answers. */
export async function searchByName(
  call: FanoutCall,
  body: Uint8Array | undefined,
): Promise<Outcome> {
  const bytesIn = body?.length ?? 0;
  let last: Answer | undefined;
  for (const { name } of call.clusters) {
    const answer = await ask(call, name, body);
    if (!answer) continue;
    if (answer.status === 404) {
      last = {
        ...answer,
        headers: { "content-type": "application/json" },
      };
      continue;
    }
    const parsed = parseJsonBytes(answer.body);
    if (parsed !== undefined && answer.status < 300) {
      rewriteAnswer(parsed, { namespace: call.namespace, cluster: name });
      return {
        status: answer.status,
        bytesIn,
        bytesOut: sendJson(call.res, answer.status, parsed),
      };
    }
    return { ...relay(call, answer), bytesIn };
  }
  if (last) return relay(call, last);
  return writeStatus(
    call.res,
    503,
    "ServiceUnavailable",
    "mca: no cluster of the set answered",
  );
}

/** One cluster's answer, read whole; undefined when it could not be reached. */
async function ask(
  call: FanoutCall,
  name: string,
  body: Uint8Array | undefined,
): Promise<Answer | undefined> {
  let res: IncomingMessage;
  try {
    res = await send(call, name, {
      method: call.req.method ?? "GET",
      target: targetFor(call, {}),
      headers: call.headers,
      body,
      connectTimeoutMs: call.connectTimeoutMs,
    });
  } catch (error) {
    call.onClusterError(name, error as Error);
    return undefined;
  }
  return {
    status: res.statusCode ?? 502,
    body: await readBody(res),
    headers: {
      "content-type": String(res.headers["content-type"] ?? "application/json"),
    },
  };
}

/** Passes an answer on as it is. */
function relay(call: FanoutCall, answer: Answer): Outcome {
  call.res.writeHead(answer.status, answer.headers).end(answer.body);
  return { status: answer.status, bytesIn: 0, bytesOut: answer.body.length };
}
