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

/** The largest body MCA reads to decide (kube-apiserver's own limit is 3 MiB). */
export const MAX_BODY = 3 * 1024 * 1024;

export function hasBody(req: IncomingMessage): boolean {
  return req.headers["content-length"] !== undefined &&
      req.headers["content-length"] !== "0" ||
    req.headers["transfer-encoding"] !== undefined;
}

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
  req.on("error", reject);
  req.on("end", () => {
    resolve(size > MAX_BODY ? undefined : Buffer.concat(chunks, size));
  });
  return promise;
}

export function parseBody(body: Uint8Array, contentType: string): unknown {
  const text = new TextDecoder().decode(body);
  try {
    return contentType.includes("yaml") ? parseYaml(text) : JSON.parse(text);
  } catch {
    return undefined;
  }
}
