/**
 * WATCH answered by several clusters, merged into one stream.
 *
 * One upstream watch per cluster; each event is marked with its cluster and
 * carries the running vector (`watch_merge.ts`). Each cluster's stream is
 * independent: when one ends or fails (a server timeout, an API server that
 * stops or restarts), the merged stream stays open and that cluster is
 * watched again from its own last version, retried with a bounded back-off
 * until it answers, so its events since then follow in the same stream.
 * Ending the merged watch instead would make kubectl `-w` exit and send
 * informers through a relist. Only what the app must act on ends it: an
 * ERROR event (e.g. `410 Gone`: the cluster's version was compacted) or a
 * refused re-open, the app's `timeoutSeconds`, or the app going away.
 *
 * @module
 */

import type { IncomingMessage } from "node:http";
import { readBody } from "../clusters/upstream_call.ts";
import { pause } from "./pause.ts";
import { writeStatus } from "../kube/status.ts";
import { fellBehind, type Outcome } from "../proxy/transport.ts";
import { type FanoutCall, send, targetFor } from "./fanout_call.ts";
import { queryParam, requestedVersions } from "./fanout_request.ts";
import { parseJsonBytes, warning } from "./answer_rewrite.ts";
import * as protobuf from "./protobuf_answer.ts";
import {
  goneEvent,
  isTransient,
  mergeEvent,
  refusalEvent,
  resumeParams,
  watchRefusal,
  type WatchState,
  watchState,
} from "./watch_merge.ts";

/** Back-off between tries of a cluster that does not answer (ms). */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 2_000;
/** A stream that lasted less than this ends in a back-off before it is opened again. */
const MIN_STREAM_MS = 1_000;

/** One try at a cluster's upstream watch. */
type Opened =
  | { kind: "open"; res: IncomingMessage }
  | { kind: "refused"; status: number; body: Uint8Array }
  | { kind: "unreachable" };

/** A running merged watch: its state, its writer and how it ends. */
interface Merged {
  call: FanoutCall;
  state: WatchState;
  signal: AbortSignal;
  /** When the app's `timeoutSeconds` runs out (ms since the epoch). */
  deadline?: number;
  write(event: unknown): void;
  /** Ends the merged watch (after `event`, if given). */
  finish(event?: unknown): void;
}

/** Serves a merged WATCH; resolves when it ends. */
export async function fanoutWatch(asked: FanoutCall): Promise<Outcome> {
  const call = protobuf.withAnswerFormat(asked); // if the app asks for it first
  const url = call.req.url ?? "/";
  const requested = requestedVersions(url);
  const names = call.clusters.map((c) => c.name);
  // a watch of one object from its version ({east: N}): the others from now
  const gone = watchRefusal(requested, names, {
    partial: call.partial || call.byName,
  });
  if (gone !== undefined) return watchGone(call, gone);
  const aborter = new AbortController();
  call.res.on("close", () => aborter.abort());
  const timeout = Number(queryParam(url, "timeoutSeconds") ?? "");
  const deadline = timeout > 0 ? Date.now() + timeout * 1000 : undefined;
  const state = watchState(requested, {
    clusters: names,
    namespace: call.namespace,
    url,
  });
  const first = await Promise.all(
    names.map((name) =>
      tryOpen(call, name, {
        params: resumeParams(url, name, {
          state,
          again: false,
          leftMs: left(deadline),
        })!,
        signal: aborter.signal,
      })
    ),
  );
  const refused = first.find((o) =>
    o.kind === "refused" && !isTransient(o.status)
  );
  if (refused?.kind === "refused") {
    aborter.abort();
    return relayRefusal(call, refused);
  }
  if (first.every((o) => o.kind !== "open")) {
    aborter.abort();
    return writeStatus(
      call.res,
      503,
      "ServiceUnavailable",
      `mca: no cluster of ${names.join(", ")} answered`,
    );
  }
  return await serveMerged(call, { state, aborter, deadline, first });
}

/** Writes the head and runs every cluster's loop until the merged watch ends. */
async function serveMerged(
  call: FanoutCall,
  args: {
    state: WatchState;
    aborter: AbortController;
    deadline?: number;
    first: Opened[];
  },
): Promise<Outcome> {
  const { state, aborter, deadline, first } = args;
  const denied = call.denied ?? [];
  const format = protobuf.watchFormat(call.req.headers.accept, first);
  call.res.writeHead(200, {
    "content-type": format.contentType,
    "cache-control": "no-cache, private",
    ...(denied.length > 0 ? { warning: warning([], denied) } : {}),
  });
  call.res.flushHeaders();
  let bytesOut = 0;
  let ended = false;
  const { promise: done, resolve } = Promise.withResolvers<void>();
  const merged: Merged = {
    call,
    state,
    signal: aborter.signal,
    deadline,
    write(event) {
      if (ended) return;
      const chunk = format.encode(event);
      if (chunk === undefined) return merged.finish(); // a format it cannot write
      bytesOut += Buffer.byteLength(chunk);
      // An app that stopped reading loses its watch, as kube-apiserver does.
      if (!call.res.write(chunk) && fellBehind(call.res)) {
        call.res.destroy();
        merged.finish();
      }
    },
    finish(event) {
      if (event !== undefined) merged.write(event);
      ended = true;
      resolve();
    },
  };
  aborter.signal.addEventListener("abort", () => merged.finish());
  const timer = deadline !== undefined
    ? setTimeout(() => merged.finish(), Math.max(0, deadline - Date.now()))
    : undefined;
  state.clusters.forEach((name, i) => follow(merged, name, first[i]));
  await done;
  clearTimeout(timer);
  aborter.abort();
  call.res.end();
  return { status: 200, bytesIn: 0, bytesOut, collisions: state.collisions };
}

/**
 * One cluster's part of the merged watch: relays its stream; when the
 * stream ends, opens it again from the cluster's own last version (after
 * a back-off when it does not answer) until the merged watch ends.
 */
async function follow(
  merged: Merged,
  name: string,
  opened: Opened,
): Promise<void> {
  const { call, state, signal } = merged;
  const url = call.req.url ?? "/";
  let streamed = opened.kind === "open";
  let delay = RETRY_FIRST_MS;
  let current = opened;
  while (!signal.aborted) {
    if (current.kind === "open") {
      const since = Date.now();
      const step = await relay(merged, name, current.res);
      if (step === "end" || signal.aborted) return;
      if (Date.now() - since >= MIN_STREAM_MS) delay = RETRY_FIRST_MS;
      else {
        // a stream that ends at once is not a healthy one: back off
        await pause(delay, signal);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    } else if (current.kind === "refused") {
      if (!isTransient(current.status)) {
        return merged.finish(
          refusalEvent(current.status, parseJsonBytes(current.body)),
        );
      }
      await pause(delay, signal);
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    } else {
      await pause(delay, signal);
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
    if (signal.aborted) return;
    const params = resumeParams(url, name, {
      state,
      again: streamed,
      leftMs: left(merged.deadline),
    });
    if (!params) {
      if (left(merged.deadline) === 0) return; // the app's time is up
      return merged.finish(goneEvent(
        `cluster ${name}'s watch broke before its initial events ended; watch again`,
      ));
    }
    current = await tryOpen(call, name, { params, signal });
    streamed ||= current.kind === "open";
  }
}

/** Relays one upstream stream until it ends; "end" when the merged watch must end. */
async function relay(
  merged: Merged,
  name: string,
  res: IncomingMessage,
): Promise<"end" | "again"> {
  try {
    for await (const line of protobuf.watchItems(res)) {
      const step = mergeEvent(merged.state, name, line);
      if (step.kind === "write") merged.write(step.event);
      if (step.kind === "end") {
        merged.finish(step.event);
        return "end";
      }
      if (step.kind === "retry") break;
    }
  } catch (error) {
    if (!merged.signal.aborted) {
      merged.call.onClusterError(name, error as Error);
    }
  }
  res.destroy();
  return "again";
}

/** One try at a cluster's upstream watch with `params`. */
async function tryOpen(
  call: FanoutCall,
  name: string,
  options: { params: Record<string, string | undefined>; signal: AbortSignal },
): Promise<Opened> {
  try {
    const res = await send(call, name, {
      method: "GET",
      target: targetFor(call, options.params),
      headers: call.headers,
      dedicated: true,
      connectTimeoutMs: call.connectTimeoutMs,
      signal: options.signal,
    });
    const status = res.statusCode ?? 502;
    if (status < 300) return { kind: "open", res };
    return { kind: "refused", status, body: await readBody(res) };
  } catch (error) {
    if (!options.signal.aborted) call.onClusterError(name, error as Error);
    return { kind: "unreachable" };
  }
}

/** A cluster refused the first watch: its answer is the app's. */
function relayRefusal(
  call: FanoutCall,
  refused: { status: number; body: Uint8Array },
): Outcome {
  call.res.writeHead(refused.status, {
    "content-type": protobuf.contentTypeOf(refused.body),
  }).end(refused.body);
  return { status: refused.status, bytesIn: 0, bytesOut: refused.body.length };
}

/** Milliseconds left before `deadline` (never negative), if there is one. */
function left(deadline: number | undefined): number | undefined {
  return deadline === undefined
    ? undefined
    : Math.max(0, deadline - Date.now());
}

function watchGone(call: FanoutCall, message: string): Outcome {
  const text = JSON.stringify(goneEvent(message)) + "\n";
  call.res.writeHead(200, { "content-type": "application/json" }).end(text);
  return { status: 200, bytesIn: 0, bytesOut: text.length };
}
