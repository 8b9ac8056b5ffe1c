/**
 * Watches of one cluster rewritten on their way to the app (namespace
 * mapping, spread-set marks, pinned versions): JSON event by event, protobuf
 * frame by frame. An app that stops reading loses its watch once it is too
 * far behind, as kube-apiserver drops an unresponsive watcher.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { readLines } from "../clusters/upstream_call.ts";
import { fellBehind } from "../proxy/transport.ts";
import { rewriteJsonLine } from "./answer_rewrite.ts";
import { isProtobuf, rewriteWatchFrames } from "./protobuf_answer.ts";

/**
 * A watch rewritten on its way to the app, in the format the cluster
 * streams it: JSON event by event, protobuf frame by frame. Returns what
 * was written (characters of JSON, bytes of protobuf).
 */
export async function relayWatch(
  upRes: IncomingMessage,
  res: ServerResponse,
  edit: (value: unknown) => void,
): Promise<number> {
  const contentType = String(upRes.headers["content-type"] ?? "");
  const protobuf = isProtobuf(contentType);
  const events = protobuf
    ? rewriteWatchFrames(upRes, edit)
    : jsonEvents(upRes, edit);
  let written = 0;
  res.writeHead(200, {
    "content-type": protobuf ? contentType : "application/json",
  });
  res.flushHeaders();
  try {
    for await (const chunk of events) {
      written += chunk.length;
      if (!res.write(chunk) && fellBehind(res)) {
        res.destroy();
        break;
      }
    }
  } catch {
    // the app or the cluster went away, or a frame MCA cannot rewrite: end
    // the stream (the app watches again) rather than send it half-converted
    upRes.destroy();
  }
  res.end();
  return written;
}

/** A JSON watch's events, each rewritten (lines that are not JSON dropped). */
async function* jsonEvents(
  upRes: IncomingMessage,
  edit: (value: unknown) => void,
): AsyncGenerator<string> {
  for await (const line of readLines(upRes)) {
    const text = rewriteJsonLine(line, edit);
    if (text !== undefined) yield text;
  }
}
