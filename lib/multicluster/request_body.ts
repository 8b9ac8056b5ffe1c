/**
 * Reading an app's request body when a decision needs it (object labels,
 * the object's cluster, a namespace to rewrite). Bounded like
 * kube-apiserver's own limit; a larger body cannot be routed by content.
 *
 * @module
 */

import type { IncomingMessage } from "node:http";
import { parse as parseYaml } from "yaml";
import { Buffer } from "node:buffer";
import {
  decodeObject,
  encodeObject,
  isProtobuf,
} from "../kube/protobuf_object.ts";

/** The largest body MCA reads to decide (kube-apiserver's own limit is 3 MiB). */
export const MAX_BODY = 3 * 1024 * 1024;

export function hasBody(req: IncomingMessage): boolean {
  return req.headers["content-length"] !== undefined &&
      req.headers["content-length"] !== "0" ||
    req.headers["transfer-encoding"] !== undefined;
}

/** The app went away before its request body ended. */
export class AbandonedBodyError extends Error {
  constructor() {
    super("client closed the connection");
    this.name = "AbandonedBodyError";
  }
}

/**
 * Reads an app's whole request body; `undefined` when it is over
 * {@linkcode MAX_BODY}. Rejects with {@linkcode AbandonedBodyError} when the
 * app closes the connection first, so the call ends as the app's doing, not
 * as an internal error.
 */
export function readRequest(
  req: IncomingMessage,
): Promise<Uint8Array | undefined> {
  const { promise, resolve, reject } = Promise.withResolvers<
    Uint8Array | undefined
  >();
  const chunks: Uint8Array[] = [];
  let size = 0;
  req.on("data", (c: Uint8Array) => {
    size += c.length;
    if (size <= MAX_BODY) chunks.push(c);
  });
  // Deno's server reports an app that left as `aborted`, an `error` and a
  // `close`, and never `end`.
  const abandoned = () => {
    if (!req.complete) reject(new AbandonedBodyError());
  };
  req.on("error", (error) => req.complete ? reject(error) : abandoned());
  req.on("close", abandoned);
  req.on("end", () => {
    resolve(size > MAX_BODY ? undefined : Buffer.concat(chunks, size));
  });
  return promise;
}

/**
 * Whether to read a body before sending anything upstream: every body kube-
 * apiserver would take (a declared length up to its 3 MiB limit). Deno's
 * `node:https` client leaks about 90 KB for every request destroyed before
 * its body ended, so a body the app abandons half-way must never have started
 * an upstream request (a soak of abandoned POSTs grew `mca` by 50 MB/s).
 * Chunked or larger bodies (`proxy` subresources) still stream.
 */
export function readsWholeBody(req: IncomingMessage): boolean {
  const length = Number(req.headers["content-length"] ?? NaN);
  return Number.isInteger(length) && length > 0 && length <= MAX_BODY &&
    req.headers["transfer-encoding"] === undefined;
}

/**
 * The body as the JSON shape MCA's rewrites work on: YAML or JSON parsed,
 * undefined when it does not parse; a protobuf body as its stub
 * (lib/kube/protobuf_object.ts), which throws `ProtobufError` when it
 * cannot be rewritten safely (the caller refuses the call: sent on
 * unchanged, a composite resourceVersion or the app's namespace would reach
 * the cluster).
 */
export function parseBody(body: Uint8Array, contentType: string): unknown {
  if (isProtobuf(contentType)) return decodeObject(body);
  const text = new TextDecoder().decode(body);
  try {
    return contentType.includes("yaml") ? parseYaml(text) : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The bytes of a body {@link parseBody} parsed and a rewrite changed: a
 * protobuf stub written back as protobuf (only the changed fields encoded
 * again), anything else as JSON (valid YAML too, so a YAML `Content-Type`
 * stays true).
 */
export function serializeBody(
  parsed: unknown,
  contentType: string,
): Uint8Array {
  if (isProtobuf(contentType)) {
    return encodeObject(parsed as Record<string, unknown>);
  }
  return new TextEncoder().encode(JSON.stringify(parsed));
}
