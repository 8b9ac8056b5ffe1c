/**
 * RFC 6902 JSON Patch from two JSON values, for the admission webhook: the
 * webhook computes `after` with the same pure {@link injectPodSpec} as
 * `mca --inject` and sends only the difference, so the two cannot disagree.
 *
 * Arrays are patched element by element only when their lengths match;
 * otherwise the whole array is replaced. That never relies on index shifts
 * (the usual source of wrong patches) and keeps patches of Pods short: the
 * injector rewrites whole container lists anyway.
 *
 * @module
 */

/** One RFC 6902 operation; only the three the producer emits. */
export type PatchOperation =
  | { op: "add"; path: string; value: unknown }
  | { op: "replace"; path: string; value: unknown }
  | { op: "remove"; path: string };

/**
 * Returns the operations that turn `before` into `after`; an empty list when
 * they are deep-equal. Neither input is modified; values in the patch are
 * copies.
 */
export function jsonPatch(before: unknown, after: unknown): PatchOperation[] {
  const ops: PatchOperation[] = [];
  diff(before, after, "", ops);
  return ops;
}

/** Escapes one reference token (RFC 6901: `~` → `~0`, `/` → `~1`). */
export function escapePointer(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

function diff(a: unknown, b: unknown, path: string, ops: PatchOperation[]) {
  if (deepEqual(a, b)) return;
  if (isObject(a) && isObject(b)) {
    for (const key of Object.keys(a)) {
      if (!Object.hasOwn(b, key)) {
        ops.push({ op: "remove", path: child(path, key) });
      }
    }
    for (const [key, value] of Object.entries(b)) {
      if (Object.hasOwn(a, key)) diff(a[key], value, child(path, key), ops);
      else ops.push({ op: "add", path: child(path, key), value: copy(value) });
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    b.forEach((value, i) => diff(a[i], value, `${path}/${i}`, ops));
    return;
  }
  ops.push({ op: "replace", path, value: copy(b) });
}

function child(path: string, key: string): string {
  return `${path}/${escapePointer(key)}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Deep equality of JSON values (key order does not matter). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length &&
      a.every((v, i) => deepEqual(v, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length &&
      keys.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

function copy(value: unknown): unknown {
  return value === undefined ? null : structuredClone(value);
}
