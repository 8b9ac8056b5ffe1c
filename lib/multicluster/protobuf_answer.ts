/**
 * Answers in protobuf for apps that ask for it first (client-go's typed
 * clients send `Accept: application/vnd.kubernetes.protobuf,application/json`):
 * on a one-cluster rewriting path (namespace mapping, spread-set marks) MCA
 * asks the cluster for protobuf too and rewrites the answer on its stub
 * (lib/kube/protobuf_object.ts, protobuf_watch.ts) with the same edits as
 * JSON. A cluster may still answer JSON (custom resources have no
 * protobuf); the caller looks at the answer's `Content-Type`.
 *
 * @module
 */

import type {
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from "node:http";
import {
  decodeObject,
  encodeObject,
  isProtobuf,
  isStub,
  PROTOBUF,
  ProtobufError,
} from "../kube/protobuf_object.ts";
import { readBody } from "../clusters/upstream_call.ts";
import { failureStatus, type Status } from "../kube/status.ts";
import { parseJsonBytes } from "./answer_rewrite.ts";
import { sendJson } from "./fanout_call.ts";
import {
  decodeWatchEvent,
  encodeWatchEvent,
  FrameReader,
  lengthPrefixed,
} from "../kube/protobuf_watch.ts";

export { isProtobuf, ProtobufError } from "../kube/protobuf_object.ts";

/**
 * True when the app's `Accept` names protobuf before anything else and no
 * Table (a Table answer is JSON-only here): it gets protobuf back, as from
 * kube-apiserver.
 */
export function prefersProtobuf(accept: string | undefined): boolean {
  const first = String(accept ?? "").split(",")[0];
  return isProtobuf(first) && !String(accept).includes("as=Table");
}

/** The `Accept` MCA sends a cluster for an app that prefers protobuf. */
export const PROTOBUF_ACCEPT = `${PROTOBUF},application/json`;

/** A protobuf answer rewritten by `edit` on its stub; throws `ProtobufError` when it cannot be. */
export function rewriteProtobufBytes(
  raw: Uint8Array,
  edit: (value: unknown) => void,
): Uint8Array {
  const stub = decodeObject(raw);
  edit(stub);
  return encodeObject(stub);
}

/**
 * The frames of a protobuf watch, each rewritten by `edit` and framed
 * again, as they arrive; throws `ProtobufError` at the first frame that
 * cannot be rewritten (the stream then ends, rather than carry it
 * half-converted).
 */
export async function* rewriteWatchFrames(
  res: IncomingMessage,
  edit: (value: unknown) => void,
): AsyncGenerator<Uint8Array> {
  const reader = new FrameReader();
  for await (const chunk of res) {
    for (const frame of reader.push(chunk as Uint8Array)) {
      const event = decodeWatchEvent(frame);
      edit(event);
      yield lengthPrefixed(encodeWatchEvent(event));
    }
  }
}

/** A merged call whose clusters are asked for protobuf when the app asks for it first. */
export function withAnswerFormat<
  T extends { req: IncomingMessage; headers: OutgoingHttpHeaders },
>(
  call: T,
): T {
  return prefersProtobuf(call.req.headers.accept)
    ? { ...call, headers: { ...call.headers, accept: PROTOBUF_ACCEPT } }
    : call;
}

/**
 * One cluster's answer to a merged LIST, parsed: JSON, or a protobuf body
 * as its stub. A protobuf body MCA cannot rewrite becomes a 502 Status
 * naming the cluster (passed on as that cluster's refusal), never a list
 * missing its objects.
 */
export async function readListAnswer(
  res: IncomingMessage,
  cluster: string,
): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
  const raw = await readBody(res);
  const status = res.statusCode ?? 502;
  if (!isProtobuf(String(res.headers["content-type"] ?? ""))) {
    return { status, body: parseJsonBytes(raw) as Record<string, unknown> };
  }
  try {
    return { status, body: decodeObject(raw) };
  } catch (error) {
    if (!(error instanceof ProtobufError)) throw error;
    return {
      status: 502,
      body: cannotRewrite(cluster, error) as unknown as Record<string, unknown>,
    };
  }
}

function cannotRewrite(cluster: string, error: Error): Status {
  return failureStatus(
    502,
    "InternalError",
    `mca: cluster ${cluster} answered a protobuf body mca cannot rewrite (${error.message}); ask for JSON (Accept: application/json)`,
  );
}

/**
 * Writes a merged answer: a stub as protobuf, anything else as JSON; a
 * stub that cannot be written (clusters that answered in different
 * formats) is a 502. Returns the bytes written.
 */
export function sendAnswer(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
): number {
  if (!isStub(body)) return sendJson(res, status, body, headers);
  let bytes: Uint8Array;
  try {
    bytes = encodeObject(body as Record<string, unknown>);
  } catch (error) {
    if (!(error instanceof ProtobufError)) throw error;
    return sendJson(res, 502, cannotRewrite("(merged)", error));
  }
  res.writeHead(status, {
    ...headers,
    "content-type": PROTOBUF,
    "content-length": bytes.length,
  });
  res.end(bytes);
  return bytes.length;
}
