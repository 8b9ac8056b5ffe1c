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
import { fellBehind, type Outcome } from "../proxy/transport.ts";
import { readBody, readLines } from "../clusters/upstream_call.ts";
import { failureStatus, statusResponse } from "../kube/status.ts";
import { type FanoutCall, send } from "./fanout.ts";
import { mapTarget } from "./fanout_request.ts";
import {
  rewriteAnswer,
  rewriteJsonBytes,
  rewriteJsonLine,
} from "./answer_rewrite.ts";
import {
  isProtobuf,
  prefersProtobuf,
  PROTOBUF_ACCEPT,
  ProtobufError,
  rewriteProtobufBytes,
  rewriteWatchFrames,
} from "./protobuf_answer.ts";

/** One cluster, with the answer rewritten (namespace mapping, spread-set marks). */
export async function forwardTransformed(
  req: IncomingMessage,
  res: ServerResponse,
  info: RequestInfo,
  args: { plan: Plan & { kind: "one" }; body?: Uint8Array; call: FanoutCall },
): Promise<Outcome> {
  const { plan, call } = args;
  const aborter = new AbortController();
  res.on("close", () => aborter.abort());
  let upRes: IncomingMessage;
  // An app that asks for protobuf first gets it (rewritten on its stub).
  const headers = prefersProtobuf(req.headers.accept)
    ? { ...call.headers, accept: PROTOBUF_ACCEPT }
    : call.headers;
  try {
    upRes = await send(call, plan.cluster, {
      method: req.method ?? "GET",
      target: mapTarget(req.url ?? "/", call.namespace),
      headers,
      body: args.body,
      dedicated: info.verb === "watch",
      connectTimeoutMs: call.connectTimeoutMs,
      signal: aborter.signal,
    });
  } catch (error) {
    call.onClusterError(plan.cluster, error as Error);
    return unreachable(res, plan.cluster, error as Error);
  }
  const status = upRes.statusCode ?? 502;
  const edit = (value: unknown) =>
    rewriteAnswer(value, {
      namespace: call.namespace,
      cluster: plan.decorate ? plan.cluster : undefined,
    });
  const bytesIn = args.body?.length ?? 0;
  const protobuf = isProtobuf(String(upRes.headers["content-type"] ?? ""));
  const bytesOut = info.verb === "watch" && status === 200
    ? await (protobuf ? relayProtobufWatch : relayWatch)(upRes, res, edit)
    : await relayBuffered(upRes, res, { edit, cluster: plan.cluster });
  return { status, bytesIn, bytesOut };
}

/** A protobuf answer MCA cannot rewrite: a 502, as a gateway that got a bad answer. */
function unrewritable(
  res: ServerResponse,
  cluster: string,
  error: ProtobufError,
): number {
  const { headers, body } = statusResponse(
    failureStatus(
      502,
      "InternalError",
      `mca: cluster ${cluster} answered a protobuf body mca cannot rewrite (${error.message}); ask for JSON (Accept: application/json)`,
    ),
  );
  res.writeHead(502, headers).end(body);
  return body.length;
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
      if (fellBehind(res)) {
        // the app stopped reading: drop its watch, as kube-apiserver would
        res.destroy();
        break;
      }
    }
  } catch {
    // the app or the cluster went away: end the stream
  }
  res.end();
  return bytesOut;
}

/** A protobuf watch, rewritten frame by frame; returns the bytes written. */
async function relayProtobufWatch(
  upRes: IncomingMessage,
  res: ServerResponse,
  edit: (value: unknown) => void,
): Promise<number> {
  let bytesOut = 0;
  res.writeHead(200, { "content-type": String(upRes.headers["content-type"]) });
  res.flushHeaders();
  try {
    for await (const frame of rewriteWatchFrames(upRes, edit)) {
      bytesOut += frame.length;
      res.write(frame);
    }
  } catch {
    // the app or the cluster went away, or a frame MCA cannot rewrite: end
    // the stream (the app watches again) rather than send it half-converted
    upRes.destroy();
  }
  res.end();
  return bytesOut;
}

/**
 * Any other answer, read whole and rewritten; returns the bytes written. A
 * protobuf answer MCA cannot rewrite is a 502 naming the cluster, never
 * passed on half-converted.
 */
async function relayBuffered(
  upRes: IncomingMessage,
  res: ServerResponse,
  args: { edit: (value: unknown) => void; cluster: string },
): Promise<number> {
  const raw = await readBody(upRes);
  let out: Uint8Array;
  if (isProtobuf(String(upRes.headers["content-type"] ?? ""))) {
    try {
      out = rewriteProtobufBytes(raw, args.edit);
    } catch (error) {
      if (!(error instanceof ProtobufError)) throw error;
      return unrewritable(res, args.cluster, error);
    }
  } else {
    out = rewriteJsonBytes(raw, args.edit);
  }
  res.writeHead(upRes.statusCode ?? 502, {
    "content-type": String(upRes.headers["content-type"] ?? "application/json"),
    "content-length": out.length,
    ...(upRes.headers.warning ? { warning: upRes.headers.warning } : {}),
  });
  res.end(out);
  return out.length;
}
