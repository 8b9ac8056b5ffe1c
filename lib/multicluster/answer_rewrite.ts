/**
 * What the app sees of one cluster's answer: the cluster's namespace mapped
 * back to the app's (the app must never see the remote one), objects of a
 * spread set marked with their cluster, and a `Warning` naming clusters an
 * answer leaves out. Shared by merged reads, searches and single-cluster
 * rewritten answers, so that all of them rewrite the same way.
 *
 * Pure: parsed JSON, text and bytes; the callers do the I/O.
 *
 * @module
 */

import { decorateObjects, rewriteBodyNamespace } from "./rewrite.ts";
import type { NamespaceMap } from "./fanout_request.ts";

/**
 * A `Warning` header (RFC 7234 form, as kube-apiserver sends) naming clusters
 * left out: `unavailable` ones, and `denied` ones the Pod's call policy kept
 * out (so nobody hunts a cluster that is up; the rule is not named).
 */
export function warning(unavailable: string[], denied: string[] = []): string {
  return [
    ...unavailable.map((c) =>
      `299 - "mca: cluster ${c} is unavailable; this answer lacks its objects"`
    ),
    ...denied.map((c) =>
      `299 - "mca: cluster ${c} is left out by this Pod's call policy; this answer lacks its objects"`
    ),
  ].join(", ");
}

/** Maps the cluster's namespace back to the app's in a body, in place. */
export function mapBack(body: unknown, namespace?: NamespaceMap): void {
  if (namespace) rewriteBodyNamespace(body, namespace.remote, namespace.app);
}

/**
 * Rewrites one cluster's answer for the app, in place: namespace mapped back,
 * then, when `cluster` is given, every object marked as coming from it.
 */
export function rewriteAnswer(
  body: unknown,
  options: { namespace?: NamespaceMap; cluster?: string },
): void {
  mapBack(body, options.namespace);
  if (options.cluster !== undefined) decorateObjects(body, options.cluster);
}

/** Parses a JSON body; undefined when it is not JSON. */
export function parseJsonBytes(raw: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(raw));
  } catch {
    return undefined;
  }
}

/** A buffered JSON body rewritten by `edit`; a body that is not JSON is passed on unchanged. */
export function rewriteJsonBytes(
  raw: Uint8Array,
  edit: (value: unknown) => void,
): Uint8Array {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(raw));
    edit(parsed);
    return new TextEncoder().encode(JSON.stringify(parsed));
  } catch {
    return raw;
  }
}

/**
 * One line of a watch stream rewritten by `edit`, newline included;
 * undefined for a line that is not JSON (it is dropped).
 */
export function rewriteJsonLine(
  line: string,
  edit: (value: unknown) => void,
): string | undefined {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    return undefined;
  }
  edit(event);
  return JSON.stringify(event) + "\n";
}
