/**
 * Writing an injected Pod spec back into the parsed YAML document with the
 * fewest possible changes.
 *
 * Every node that is already equal to the wanted value is kept as it is, so
 * the user's comments, key order and scalar text of untouched parts survive
 * `mca --inject`.
 *
 * @module
 */

import { isMap, isScalar, isSeq } from "yaml";
import type { Document, Node, YAMLMap, YAMLSeq } from "yaml";
import type { JsonObject } from "./pod_json.ts";

/**
 * Makes a YAML map equal to a plain object while keeping every node that is
 * already equal, so comments, key order and scalar text of untouched parts
 * survive.
 */
export function mergeInto(
  map: YAMLMap,
  wanted: JsonObject,
  doc: Document,
): void {
  for (const pair of [...map.items]) {
    const key = isScalar(pair.key) ? pair.key.value : undefined;
    if (typeof key !== "string" || !(key in wanted)) map.delete(pair.key);
  }
  for (const [key, value] of Object.entries(wanted)) {
    const current = map.get(key, true) as Node | undefined;
    map.set(key, mergedNode(current, value, doc));
  }
}

function mergedNode(current: unknown, wanted: unknown, doc: Document): unknown {
  if (isMap(current) && isPlainObject(wanted)) {
    mergeInto(current, wanted, doc);
    return current;
  }
  if (isSeq(current) && Array.isArray(wanted)) {
    mergeSeq(current, wanted, doc);
    return current;
  }
  if (isScalar(current) && sameValue(current.toJSON(), wanted)) return current;
  // Created in the YAML 1.1 document: a string such as "yes" gets quoted.
  return doc.createNode(wanted);
}

/** Equal as inject reads them (420n from the input equals our 420). */
function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  const numeric = (v: unknown) =>
    typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v));
  if (numeric(a) && numeric(b)) {
    return BigInt(a as number | bigint) === BigInt(b as number | bigint);
  }
  return false;
}

/** Sequences of named objects are matched by name, others by position. */
function mergeSeq(seq: YAMLSeq, wanted: unknown[], doc: Document): void {
  // Repeated names (an invalid Pod, still kept as written) match in order.
  const byName = new Map<string, unknown[]>();
  for (const item of seq.items) {
    if (isMap(item)) {
      const name = isScalar(item.get("name", true))
        ? (item.get("name", true) as { value: unknown }).value
        : undefined;
      if (typeof name === "string") {
        byName.set(name, [...(byName.get(name) ?? []), item]);
      }
    }
  }
  seq.items = wanted.map((value, i) => {
    const name = isPlainObject(value) ? value.name : undefined;
    const current = typeof name === "string"
      ? byName.get(name)?.shift()
      : seq.items[i];
    return mergedNode(current, value, doc);
  });
}

function isPlainObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
