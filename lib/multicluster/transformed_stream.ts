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
import { rewriteWatchFrames } from "./protobuf_answer.ts";

/** A JSON watch, rewritten event by event; returns the characters written. */
export async function relayWatch(
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
      if (!res.write(text) && fellBehind(res)) {
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
export async function relayProtobufWatch(
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
      if (!res.write(frame) && fellBehind(res)) {
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
  return bytesOut;
}
