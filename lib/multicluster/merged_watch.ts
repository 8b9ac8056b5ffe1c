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

import type { IncomingMessage } from "node:http";
import { readBody, readLines } from "../clusters/upstream_call.ts";
import { writeStatus } from "../kube/status.ts";
import type { Outcome } from "../proxy/transport.ts";
import { type FanoutCall, send, targetFor } from "./fanout.ts";
import { requestedVersions, versionFor } from "./fanout_request.ts";
import { warning } from "./answer_rewrite.ts";
import {
  goneEvent,
  mergeEvent,
  watchRefusal,
  type WatchState,
  watchState,
} from "./watch_merge.ts";

/** One cluster's upstream watch; no response when it could not be opened. */
interface Opened {
  name: string;
  res: IncomingMessage | undefined;
}

/** Serves a merged WATCH; resolves when it ends. */
export async function fanoutWatch(call: FanoutCall): Promise<Outcome> {
  const requested = requestedVersions(call.req.url ?? "/");
  const names = call.clusters.map((c) => c.name);
  const gone = watchRefusal(requested, names);
  if (gone !== undefined) return watchGone(call, gone);
  const aborter = new AbortController();
  call.res.on("close", () => aborter.abort());
  const opened = await Promise.all(
    names.map((name) => openWatch(call, name, aborter.signal)),
  );
  const refused = opened.find((o) => o.res && (o.res.statusCode ?? 0) >= 300);
  if (refused?.res) return await relayRefusal(call, refused.res, aborter);
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
  const state = watchState(requested, {
    clusters: call.clusters.length,
    namespace: call.namespace,
  });
  const bytesOut = await relayMerged(call, live, { state, aborter });
  return { status: 200, bytesIn: 0, bytesOut };
}

/** Opens one cluster's upstream watch at the version the app asked for it. */
async function openWatch(
  call: FanoutCall,
  name: string,
  signal: AbortSignal,
): Promise<Opened> {
  try {
    const res = await send(call, name, {
      method: "GET",
      target: targetFor(call, {
        resourceVersion: versionFor(call.req.url ?? "/", name),
      }),
      headers: call.headers,
      dedicated: true,
      connectTimeoutMs: call.connectTimeoutMs,
      signal,
    });
    return { name, res };
  } catch (error) {
    if (!signal.aborted) call.onClusterError(name, error as Error);
    return { name, res: undefined };
  }
}

/** A cluster refused the watch: its answer is the app's, the other watches are closed. */
async function relayRefusal(
  call: FanoutCall,
  refused: IncomingMessage,
  aborter: AbortController,
): Promise<Outcome> {
  const body = await readBody(refused);
  aborter.abort();
  call.res.writeHead(refused.statusCode ?? 502, {
    "content-type": "application/json",
  }).end(body);
  return {
    status: refused.statusCode ?? 502,
    bytesIn: 0,
    bytesOut: body.length,
  };
}

/**
 * Relays the events of every live watch until the first one ends (an ERROR
 * event, the end of its stream, or a failure), then closes all; returns the
 * bytes written.
 */
async function relayMerged(
  call: FanoutCall,
  live: Opened[],
  options: { state: WatchState; aborter: AbortController },
): Promise<number> {
  const { state, aborter } = options;
  let bytesOut = 0;
  let ended = false;
  function write(event: unknown): void {
    if (ended) return;
    const line = JSON.stringify(event) + "\n";
    bytesOut += Buffer.byteLength(line);
    call.res.write(line);
  }
  await Promise.race(live.map(async ({ name, res }) => {
    try {
      for await (const line of readLines(res!)) {
        const step = mergeEvent(state, name, line);
        if (step.kind !== "skip") write(step.event);
        if (step.kind === "end") return;
      }
    } catch (error) {
      if (!aborter.signal.aborted) call.onClusterError(name, error as Error);
    }
  }));
  ended = true;
  aborter.abort();
  call.res.end();
  return bytesOut;
}

function watchGone(call: FanoutCall, message: string): Outcome {
  const text = JSON.stringify(goneEvent(message)) + "\n";
  call.res.writeHead(200, { "content-type": "application/json" }).end(text);
  return { status: 200, bytesIn: 0, bytesOut: text.length };
}
