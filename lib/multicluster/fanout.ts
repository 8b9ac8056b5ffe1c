/**
 * Reads answered by several clusters at once, merged so that an SDK sees
 * one API server.
 *
 * - LIST: every cluster is asked; items are concatenated, each marked with
 *   `mca.io/cluster`; the list's resourceVersion is composite. With `limit`
 *   the clusters are paged one after the other behind one continue token.
 * - WATCH: one upstream watch per cluster, merged into one stream; every
 *   event carries the composite version of all clusters so far, so that a
 *   client resuming from any event misses nothing; an ERROR event (e.g.
 *   `410 Gone`) or the end of any cluster's stream ends the merged watch,
 *   and the client relists or rewatches as it would against one server.
 * - by-name calls on a spread set: asked cluster by cluster until one has
 *   the object.
 *
 * A cluster that cannot be reached is left out and named in a `Warning`
 * header (as kube-apiserver warns), never hidden and never fatal.
 *
 * @module
 */

import type {
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from "node:http";
import {
  type CallOptions,
  callUpstream,
  readJson,
} from "../clusters/upstream_call.ts";
import type { UpstreamObservation } from "../observe/observer.ts";
import type { Upstream } from "../clusters/upstream.ts";
import {
  decodeContinue,
  decodeResourceVersion,
  encodeContinue,
  encodeResourceVersion,
  type VersionVector,
} from "../kube/resource_version.ts";
import {
  decorateObjects,
  rewriteBodyNamespace,
  rewriteTargetNamespace,
} from "./rewrite.ts";
import { writeStatus } from "../kube/status.ts";
import type { Outcome } from "../proxy/transport.ts";

/** What a merged call needs. */
export interface FanoutCall {
  req: IncomingMessage;
  res: ServerResponse;
  /** Headers for upstream (credentials already removed). */
  headers: OutgoingHttpHeaders;
  /** The app's namespace, when a rule maps it to another on the clusters. */
  namespace?: { app: string; remote: string };
  clusters: Array<{ name: string; upstream: Upstream }>;
  /** Clusters of the set that are known to be down. */
  missing: string[];
  connectTimeoutMs: number;
  /** Called when a cluster fails during the call. */
  onClusterError(cluster: string, error: Error): void;
  /** The call's observation of one upstream request. */
  observe?(cluster: string, target: string): UpstreamObservation | undefined;
}

/** One upstream request of a merged call, seen by the call's observers. */
export function send(
  call: FanoutCall,
  cluster: string,
  options: CallOptions,
): Promise<IncomingMessage> {
  const { upstream } = call.clusters.find((c) => c.name === cluster)!;
  return callUpstream(upstream, {
    ...options,
    observation: call.observe?.(cluster, options.target),
  });
}

type Json = Record<string, unknown>;

/** A `Warning` header (RFC 7234 form, as kube-apiserver sends) naming clusters left out. */
export function warning(clusters: string[]): string {
  return clusters.map((c) =>
    `299 - "mca: cluster ${c} is unavailable; this answer lacks its objects"`
  ).join(", ");
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
): number {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
  return Buffer.byteLength(text);
}

/** The request target for one cluster: its version, its continue, its namespace. */
export function targetFor(
  call: FanoutCall,
  params: Record<string, string | undefined>,
): string {
  const url = new URL(call.req.url ?? "/", "https://mca.invalid");
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === "") url.searchParams.delete(key);
    else url.searchParams.set(key, value);
  }
  const target = url.pathname + (url.search === "?" ? "" : url.search);
  return call.namespace
    ? rewriteTargetNamespace(target, call.namespace.app, call.namespace.remote)
    : target;
}

export function fixNamespace(call: FanoutCall, body: unknown): void {
  if (call.namespace) {
    rewriteBodyNamespace(body, call.namespace.remote, call.namespace.app);
  }
}

export function requestedVersions(
  call: FanoutCall,
): VersionVector | "any" | "invalid" {
  const rv = new URL(call.req.url ?? "/", "https://mca.invalid").searchParams
    .get("resourceVersion") ?? "";
  if (rv === "" || rv === "0") return "any";
  return decodeResourceVersion(rv) ?? "invalid";
}

/** Merged LIST (and deletecollection, whose answer is a list too). */
export async function fanoutList(call: FanoutCall): Promise<Outcome> {
  const params =
    new URL(call.req.url ?? "/", "https://mca.invalid").searchParams;
  if (
    call.req.method === "GET" && (params.get("limit") || params.get("continue"))
  ) {
    return await pagedList(call);
  }
  const versions = requestedVersions(call);
  const rvParam = params.get("resourceVersion") ?? undefined;
  const answers = await Promise.all(
    call.clusters.map(async ({ name }) => {
      try {
        const rv = typeof versions === "object"
          ? versions[name]
          : versions === "any"
          ? rvParam
          : undefined;
        const res = await send(call, name, {
          method: call.req.method ?? "GET",
          target: targetFor(call, { resourceVersion: rv }),
          headers: call.headers,
          connectTimeoutMs: call.connectTimeoutMs,
        });
        return {
          name,
          status: res.statusCode ?? 502,
          body: await readJson(res) as Json | undefined,
        };
      } catch (error) {
        call.onClusterError(name, error as Error);
        return { name, status: 0, body: undefined };
      }
    }),
  );
  const failed = answers.find((a) => a.status >= 300);
  if (failed) {
    // A refusal (403, 410...) is the answer: a partial list would mislead.
    return {
      status: failed.status,
      bytesIn: 0,
      bytesOut: sendJson(call.res, failed.status, failed.body),
    };
  }
  const ok = answers.filter((a) => a.status > 0 && a.body !== undefined);
  const missing = [
    ...call.missing,
    ...answers.filter((a) => a.status === 0).map((a) => a.name),
  ];
  if (ok.length === 0) {
    return writeStatus(
      call.res,
      503,
      "ServiceUnavailable",
      `mca: no cluster of ${[...missing].join(", ")} answered`,
    );
  }
  const merged = ok[0].body as Json;
  const vector: VersionVector = {};
  const key = merged.kind === "Table" ? "rows" : "items";
  const all: unknown[] = [];
  for (const answer of ok) {
    const body = answer.body as Json;
    fixNamespace(call, body);
    decorateObjects(body, answer.name);
    all.push(...(Array.isArray(body[key]) ? body[key] as unknown[] : []));
    const meta = body.metadata as Json | undefined;
    if (typeof meta?.resourceVersion === "string") {
      vector[answer.name] = meta.resourceVersion;
    }
  }
  merged[key] = all;
  merged.metadata = {
    ...(merged.metadata as Json ?? {}),
    resourceVersion: encodeResourceVersion(vector),
  };
  delete (merged.metadata as Json).continue;
  delete (merged.metadata as Json).remainingItemCount;
  const headers = missing.length > 0 ? { warning: warning(missing) } : {};
  return {
    status: 200,
    bytesIn: 0,
    bytesOut: sendJson(call.res, 200, merged, headers),
  };
}

/** The version a cluster's first page is read at (a continue token carries its own). */
function firstPageVersion(
  call: FanoutCall,
  cluster: string,
): string | undefined {
  const versions = requestedVersions(call);
  if (typeof versions === "object") return versions[cluster];
  if (versions === "invalid") return undefined;
  return new URL(call.req.url ?? "/", "https://mca.invalid").searchParams
    .get("resourceVersion") ?? undefined;
}

/** LIST with `limit`: the clusters are paged in order behind one token. */
async function pagedList(call: FanoutCall): Promise<Outcome> {
  const params =
    new URL(call.req.url ?? "/", "https://mca.invalid").searchParams;
  const token = params.get("continue");
  const names = call.clusters.map((c) => c.name);
  const state = token
    ? decodeContinue(token)
    : { cluster: names[0], continue: "", versions: {} };
  if (!state || !names.includes(state.cluster)) {
    return writeStatus(
      call.res,
      410,
      "Expired",
      "mca: the continue token is not valid for the current set of clusters; list again from the start",
    );
  }
  const res = await send(call, state.cluster, {
    method: "GET",
    target: targetFor(call, {
      continue: state.continue,
      ...(state.continue !== ""
        ? { resourceVersion: undefined, resourceVersionMatch: undefined }
        : { resourceVersion: firstPageVersion(call, state.cluster) }),
    }),
    headers: call.headers,
    connectTimeoutMs: call.connectTimeoutMs,
  }).catch((error) => {
    call.onClusterError(state!.cluster, error);
    return undefined;
  });
  if (!res) {
    return writeStatus(
      call.res,
      503,
      "ServiceUnavailable",
      `mca: cluster ${state.cluster} is unavailable`,
    );
  }
  const body = await readJson(res) as Json | undefined;
  if ((res.statusCode ?? 502) >= 300 || !body) {
    return {
      status: res.statusCode ?? 502,
      bytesIn: 0,
      bytesOut: sendJson(call.res, res.statusCode ?? 502, body),
    };
  }
  fixNamespace(call, body);
  decorateObjects(body, state.cluster);
  const meta = (body.metadata ?? {}) as Json;
  const versions = { ...state.versions };
  if (typeof meta.resourceVersion === "string") {
    versions[state.cluster] = meta.resourceVersion;
  }
  const next = typeof meta.continue === "string" && meta.continue !== ""
    ? { cluster: state.cluster, continue: meta.continue, versions }
    : names.indexOf(state.cluster) + 1 < names.length
    ? {
      cluster: names[names.indexOf(state.cluster) + 1],
      continue: "",
      versions,
    }
    : undefined;
  body.metadata = { ...meta, resourceVersion: encodeResourceVersion(versions) };
  delete (body.metadata as Json).remainingItemCount;
  if (next) (body.metadata as Json).continue = encodeContinue(next);
  else delete (body.metadata as Json).continue;
  const headers = call.missing.length > 0
    ? { warning: warning(call.missing) }
    : {};
  return {
    status: 200,
    bytesIn: 0,
    bytesOut: sendJson(call.res, 200, body, headers),
  };
}
