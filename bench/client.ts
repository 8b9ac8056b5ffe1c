/**
 * A one-shot HTTPS GET on a fresh connection (start-up checks, sanity
 * checks before a load run).
 *
 * @module
 */

import { request } from "node:https";
import { request as plainRequest } from "node:http";

/** Answer of {@linkcode getOnce}. */
export interface Got {
  status: number;
  bytes: number;
  body: string;
}

/** GETs `path` with a bearer token; `ca` undefined means plain HTTP. */
export function getOnce(
  port: number,
  path: string,
  opts: { ca?: string; token?: string; timeoutMs?: number; keepBody?: boolean },
): Promise<Got> {
  const { promise, resolve, reject } = Promise.withResolvers<Got>();
  const options = {
    host: "127.0.0.1",
    port,
    path,
    method: "GET",
    agent: false as const,
    headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
  };
  const onResponse = (res: import("node:http").IncomingMessage) => {
    let bytes = 0;
    const chunks: string[] = [];
    res.on("data", (c: Uint8Array) => {
      bytes += c.length;
      if (opts.keepBody !== false && bytes < 1 << 20) {
        chunks.push(new TextDecoder().decode(c));
      }
    });
    res.on("error", reject);
    res.on(
      "end",
      () =>
        resolve({ status: res.statusCode ?? 0, bytes, body: chunks.join("") }),
    );
  };
  const req = opts.ca === undefined
    ? plainRequest(options, onResponse)
    : request({ ...options, ca: opts.ca }, onResponse);
  req.setTimeout(opts.timeoutMs ?? 10_000, () => {
    req.destroy(new Error(`GET ${path} on port ${port}: timed out`));
  });
  req.on("error", reject);
  req.end();
  return promise;
}
