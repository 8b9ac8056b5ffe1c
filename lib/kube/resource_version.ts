/**
 * Composite resourceVersions and continue tokens for merged multi-cluster
 * reads.
 *
 * A LIST or WATCH answered from several clusters has no single
 * resourceVersion: each cluster has its own. MCA gives clients one opaque
 * string that carries all of them, so that the usual SDK loops keep working:
 * list, then watch from the list's version; resume a broken watch from the
 * last event's version; relist on `410 Gone`. The encoding follows Karmada's
 * (base64url of a JSON map sorted by cluster) behind a prefix that marks it
 * as MCA's, so a per-cluster version is never mistaken for a composite one.
 *
 * @module
 */

/** Per-cluster resourceVersions. */
export type VersionVector = Record<string, string>;

const RV_PREFIX = "mca.";
const CONTINUE_PREFIX = "mca.";

function base64url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

function fromBase64url(text: string): string {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - b64.length % 4) % 4));
  return new TextDecoder().decode(
    Uint8Array.from(binary, (c) => c.charCodeAt(0)),
  );
}

function sorted(vector: VersionVector): VersionVector {
  return Object.fromEntries(
    Object.keys(vector).sort().map((k) => [k, vector[k]]),
  );
}

/** Encodes per-cluster versions as one opaque resourceVersion. */
export function encodeResourceVersion(vector: VersionVector): string {
  return RV_PREFIX + base64url(JSON.stringify(sorted(vector)));
}

/** True for a version MCA made (as opposed to one a cluster made). */
export function isCompositeResourceVersion(value: string): boolean {
  return value.startsWith(RV_PREFIX);
}

/**
 * Decodes a composite resourceVersion. Returns undefined for anything that
 * is not a well-formed composite version (callers answer 410/400).
 */
export function decodeResourceVersion(
  value: string,
): VersionVector | undefined {
  if (!isCompositeResourceVersion(value)) return undefined;
  try {
    const parsed = JSON.parse(fromBase64url(value.slice(RV_PREFIX.length)));
    if (
      parsed === null || typeof parsed !== "object" || Array.isArray(parsed)
    ) {
      return undefined;
    }
    for (const v of Object.values(parsed)) {
      if (typeof v !== "string") return undefined;
    }
    return parsed as VersionVector;
  } catch {
    return undefined;
  }
}

/** Where a paginated merged LIST stands. */
export interface ContinueState {
  /** Cluster whose items come next. */
  cluster: string;
  /** That cluster's own continue token ("" to start it from the top). */
  continue: string;
  /**
   * The list's snapshot, fixed by its first page: every cluster's version
   * (each later cluster is read at exactly its entry).
   */
  versions: VersionVector;
}

/** Encodes a merged LIST's position as one opaque continue token. */
export function encodeContinue(state: ContinueState): string {
  return CONTINUE_PREFIX + base64url(JSON.stringify({
    cluster: state.cluster,
    continue: state.continue,
    versions: sorted(state.versions),
  }));
}

/** Decodes a continue token MCA issued; undefined if it is not one. */
export function decodeContinue(value: string): ContinueState | undefined {
  if (!value.startsWith(CONTINUE_PREFIX)) return undefined;
  try {
    const parsed = JSON.parse(
      fromBase64url(value.slice(CONTINUE_PREFIX.length)),
    );
    if (
      typeof parsed?.cluster !== "string" ||
      typeof parsed?.continue !== "string" ||
      parsed?.versions === null || typeof parsed?.versions !== "object"
    ) {
      return undefined;
    }
    return parsed as ContinueState;
  } catch {
    return undefined;
  }
}
