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
import { failureStatus, statusResponse } from "../kube/status.ts";
import { type FanoutCall, send } from "./fanout.ts";
import {
  decorateObjects,
  rewriteBodyNamespace,
  rewriteTargetNamespace,
} from "./rewrite.ts";

/** One cluster, with the answer rewritten (namespace mapping, spread-set marks). */
export async function forwardTransformed(
  req: IncomingMessage,
  res: ServerResponse,
  info: RequestInfo,
  args: { plan: Plan & { kind: "one" }; body?: Uint8Array; call: FanoutCall },
): Promise<Outcome> {
  const { plan, call } = args;
  const target = call.namespace
    ? rewriteTargetNamespace(
      req.url ?? "/",
      call.namespace.app,
      call.namespace.remote,
    )
    : req.url ?? "/";
  const aborter = new AbortController();
  res.on("close", () => aborter.abort());
  let upRes: IncomingMessage;
  try {
    upRes = await send(call, plan.cluster, {
      method: req.method ?? "GET",
      target,
      headers: call.headers,
      body: args.body,
      dedicated: info.verb === "watch",
      connectTimeoutMs: call.connectTimeoutMs,
      signal: aborter.signal,
    });
  } catch (error) {
    call.onClusterError(plan.cluster, error as Error);
    const { headers, body } = statusResponse(
      failureStatus(
        503,
        "ServiceUnavailable",
        `mca: cluster ${plan.cluster} is unreachable: ${
          (error as Error).message
        }`,
      ),
      { retryAfterSeconds: 1 },
    );
    res.writeHead(503, headers).end(body);
    return {
      status: 503,
      bytesIn: 0,
      bytesOut: body.length,
      unreachable: true,
    };
  }
  const status = upRes.statusCode ?? 502;
  const transform = (value: unknown) => {
    if (call.namespace) {
      rewriteBodyNamespace(value, call.namespace.remote, call.namespace.app);
    }
    if (plan.decorate) decorateObjects(value, plan.cluster);
  };
  let bytesOut = 0;
  if (info.verb === "watch" && status === 200) {
    res.writeHead(200, { "content-type": "application/json" });
    res.flushHeaders();
    try {
      for await (const line of readLines(upRes)) {
        let event: unknown;
        try {
          event = JSON.parse(line);
        } catch {
          continue;
        }
        transform(event);
        const text = JSON.stringify(event) + "\n";
        bytesOut += text.length;
        res.write(text);
      }
    } catch {
      // the app or the cluster went away: end the stream
    }
    res.end();
    return { status, bytesIn: args.body?.length ?? 0, bytesOut };
  }
  const raw = await readBody(upRes);
  let out: Uint8Array = raw;
  try {
    const parsed = JSON.parse(new TextDecoder().decode(raw));
    transform(parsed);
    out = new TextEncoder().encode(JSON.stringify(parsed));
  } catch {
    // not JSON: pass it on unchanged
  }
  res.writeHead(status, {
    "content-type": String(upRes.headers["content-type"] ?? "application/json"),
    "content-length": out.length,
    ...(upRes.headers.warning ? { warning: upRes.headers.warning } : {}),
  });
  res.end(out);
  return { status, bytesIn: args.body?.length ?? 0, bytesOut: out.length };
}
