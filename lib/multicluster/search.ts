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
import { decorateObjects } from "./rewrite.ts";
import {
  type FanoutCall,
  fixNamespace,
  send,
  sendJson,
  targetFor,
} from "./fanout.ts";

/** A by-name call on a spread set: the first cluster that has the object answers. */
export async function searchByName(
  call: FanoutCall,
  body: Uint8Array | undefined,
): Promise<Outcome> {
  let last:
    | { status: number; body: Uint8Array; headers: OutgoingHttpHeaders }
    | undefined;
  for (const { name } of call.clusters) {
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
      continue;
    }
    const status = res.statusCode ?? 502;
    const raw = await readBody(res);
    if (status === 404) {
      last = {
        status,
        body: raw,
        headers: { "content-type": "application/json" },
      };
      continue;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(raw));
    } catch {
      parsed = undefined;
    }
    if (parsed !== undefined && status < 300) {
      fixNamespace(call, parsed);
      decorateObjects(parsed, name);
      return {
        status,
        bytesIn: body?.length ?? 0,
        bytesOut: sendJson(call.res, status, parsed),
      };
    }
    call.res.writeHead(status, {
      "content-type": String(res.headers["content-type"] ?? "application/json"),
    }).end(raw);
    return { status, bytesIn: body?.length ?? 0, bytesOut: raw.length };
  }
  if (last) {
    call.res.writeHead(last.status, last.headers).end(last.body);
    return { status: last.status, bytesIn: 0, bytesOut: last.body.length };
  }
  return writeStatus(
    call.res,
    503,
    "ServiceUnavailable",
    "mca: no cluster of the set answered",
  );
}
