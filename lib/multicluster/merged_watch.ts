/**
 * WATCH answered by several clusters, merged into one stream.
 *
 * One upstream watch per cluster; each event is marked with its cluster and
 * carries the composite resourceVersion of all clusters so far, so that a
 * client resuming from any event misses nothing. An ERROR event (e.g. `410
 * Gone`) or the end of any cluster's stream ends the merged watch: the
 * client then rewatches or relists exactly as it would against one server.
 * A resourceVersion that does not cover the current clusters is answered
 * with `410 Gone`, which makes informers relist.
 *
 * @module
 */

import { readBody, readLines } from "../clusters/upstream_call.ts";
import {
  encodeResourceVersion,
  type VersionVector,
} from "../kube/resource_version.ts";
import { decorateObjects } from "./rewrite.ts";
import { failureStatus, writeStatus } from "../kube/status.ts";
import type { Outcome } from "../proxy/transport.ts";
import {
  type FanoutCall,
  fixNamespace,
  requestedVersions,
  send,
  targetFor,
  warning,
} from "./fanout.ts";

type Json = Record<string, unknown>;

/** Serves a merged WATCH; resolves when it ends. */
export async function fanoutWatch(call: FanoutCall): Promise<Outcome> {
  const requested = requestedVersions(call);
  if (requested === "invalid") {
    return watchGone(
      call,
      "the resourceVersion was not issued by mca for this set of clusters",
    );
  }
  if (
    typeof requested === "object" &&
    call.clusters.some((c) => requested[c.name] === undefined)
  ) {
    return watchGone(
      call,
      "the set of clusters changed since this resourceVersion; list again",
    );
  }
  const rvParam =
    new URL(call.req.url ?? "/", "https://mca.invalid").searchParams.get(
      "resourceVersion",
    ) ?? undefined;
  const aborter = new AbortController();
  call.res.on("close", () => aborter.abort());
  const vector: VersionVector = typeof requested === "object"
    ? { ...requested }
    : {};
  const opened = await Promise.all(
    call.clusters.map(async ({ name }) => {
      try {
        const res = await send(call, name, {
          method: "GET",
          target: targetFor(call, {
            resourceVersion: typeof requested === "object"
              ? requested[name]
              : rvParam,
          }),
          headers: call.headers,
          dedicated: true,
          connectTimeoutMs: call.connectTimeoutMs,
          signal: aborter.signal,
        });
        return { name, res };
      } catch (error) {
        if (!aborter.signal.aborted) call.onClusterError(name, error as Error);
        return { name, res: undefined };
      }
    }),
  );
  const refused = opened.find((o) => o.res && (o.res.statusCode ?? 0) >= 300);
  if (refused?.res) {
    const body = await readBody(refused.res);
    aborter.abort();
    call.res.writeHead(refused.res.statusCode ?? 502, {
      "content-type": "application/json",
    }).end(body);
    return {
      status: refused.res.statusCode ?? 502,
      bytesIn: 0,
      bytesOut: body.length,
    };
  }
  const live = opened.filter((o) => o.res !== undefined);
  const missing = [
    ...call.missing,
    ...opened.filter((o) => !o.res).map((o) => o.name),
  ];
  if (live.length === 0) {
    return writeStatus(
      call.res,
      503,
      "ServiceUnavailable",
      `mca: no cluster of ${missing.join(", ")} answered`,
    );
  }
  call.res.writeHead(200, {
    "content-type": "application/json",
    "cache-control": "no-cache, private",
    ...(missing.length > 0 ? { warning: warning(missing) } : {}),
  });
  call.res.flushHeaders();
  let bytesOut = 0;
  let ended = false;
  function write(event: Json): void {
    if (ended) return;
    const line = JSON.stringify(event) + "\n";
    bytesOut += Buffer.byteLength(line);
    call.res.write(line);
  }
  await Promise.race(live.map(async ({ name, res }) => {
    try {
      for await (const line of readLines(res!)) {
        let event: Json;
        try {
          event = JSON.parse(line);
        } catch {
          continue;
        }
        const object = event.object as Json | undefined;
        if (event.type === "ERROR") {
          write(event);
          return;
        }
        const meta = object?.metadata as Json | undefined;
        if (typeof meta?.resourceVersion === "string") {
          vector[name] = meta.resourceVersion;
        }
        fixNamespace(call, event);
        if (event.type === "BOOKMARK" && meta) {
          if (Object.keys(vector).length === call.clusters.length) {
            meta.resourceVersion = encodeResourceVersion(vector);
            write(event);
          }
          continue;
        }
        decorateObjects(event, name, vector);
        write(event);
      }
    } catch (error) {
      if (!aborter.signal.aborted) call.onClusterError(name, error as Error);
    }
  }));
  ended = true;
  aborter.abort();
  call.res.end();
  return { status: 200, bytesIn: 0, bytesOut };
}

function watchGone(call: FanoutCall, message: string): Outcome {
  // As kube-apiserver does: 200, then one ERROR event carrying a 410 Status.
  const event = {
    type: "ERROR",
    object: failureStatus(410, "Expired", `mca: ${message}`),
  };
  const text = JSON.stringify(event) + "\n";
  call.res.writeHead(200, { "content-type": "application/json" }).end(text);
  return { status: 200, bytesIn: 0, bytesOut: text.length };
}
