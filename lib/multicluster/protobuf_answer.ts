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
  MAGIC,
  PROTOBUF,
  ProtobufError,
} from "../kube/protobuf_object.ts";
import { readBody, readLines } from "../clusters/upstream_call.ts";
import { failureStatus, type Status } from "../kube/status.ts";
import { parseJsonBytes } from "./answer_rewrite.ts";
import { sendJson } from "./fanout_call.ts";
import {
  decodeWatchEvent,
  encodeStatusEvent,
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

/**
 * The events of one cluster's watch as they arrive: JSON lines as text, a
 * protobuf stream's frames as their stubs (`mergeEvent` takes either). A
 * frame that cannot be read throws `ProtobufError`: the stream is then
 * treated as broken, never relayed half-converted.
 */
export async function* watchItems(
  res: IncomingMessage,
): AsyncGenerator<string | Record<string, unknown>> {
  if (!isProtobuf(String(res.headers["content-type"] ?? ""))) {
    yield* readLines(res);
    return;
  }
  const reader = new FrameReader();
  for await (const chunk of res) {
    for (const frame of reader.push(chunk as Uint8Array)) {
      yield decodeWatchEvent(frame);
    }
  }
}

/** How a merged watch writes its events. */
export interface WatchFormat {
  contentType: string;
  /** An event's bytes; undefined when it cannot be written in this format (the watch ends). */
  encode(event: unknown): string | Uint8Array | undefined;
}

/**
 * The format of a merged watch: protobuf when the app asks for it first and
 * every cluster that answered streams protobuf, else JSON. An event that
 * does not fit (a cluster that came back in the other format) cannot be
 * written: the caller ends the watch, and the app watches again.
 */
export function watchFormat(
  accept: string | undefined,
  opened: Array<{ kind: string; res?: IncomingMessage }>,
): WatchFormat {
  const streams = opened.flatMap((o) =>
    o.kind === "open" && o.res ? [o.res] : []
  );
  const protobuf = prefersProtobuf(accept) && streams.length > 0 &&
    streams.every((s) => isProtobuf(String(s.headers["content-type"] ?? "")));
  if (!protobuf) {
    return {
      contentType: "application/json",
      encode: (event) =>
        isStub((event as { object?: unknown })?.object)
          ? undefined
          : JSON.stringify(event) + "\n",
    };
  }
  return {
    contentType: `${PROTOBUF};stream=watch`,
    encode(event) {
      const object = (event as { object?: Record<string, unknown> }).object;
      if (isStub(object)) {
        return lengthPrefixed(
          encodeWatchEvent(event as Record<string, unknown>),
        );
      }
      return object?.kind === "Status"
        ? lengthPrefixed(encodeStatusEvent(event as Record<string, unknown>))
        : undefined;
    },
  };
}

/** A cluster's error body passed on as it came: protobuf when it starts with the magic, else JSON. */
export function contentTypeOf(body: Uint8Array): string {
  return MAGIC.every((b, i) => body[i] === b) ? PROTOBUF : "application/json";
}
