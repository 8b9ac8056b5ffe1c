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

import type { IncomingMessage } from "node:http";
import {
  decodeObject,
  encodeObject,
  isProtobuf,
  PROTOBUF,
} from "../kube/protobuf_object.ts";
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
