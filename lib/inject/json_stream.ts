/**
 * How `mca --inject` reads its input: YAML as YAML 1.1 (what Kubernetes
 * reads), and a stream that is wholly JSON with JSON's meaning, written back
 * as YAML 1.1 that a Kubernetes reader takes for the same values.
 *
 * Without this, `1e3` or `"yes"` in a JSON manifest could change type on the
 * way through inject.
 *
 * @module
 */

import { Document, parseAllDocuments, visit } from "yaml";
import { RAW_TAG, RawText } from "./yaml_guard.ts";

/** YAML 1.1 (what Kubernetes reads), exact integers, our verbatim tag. */
export const YAML_OPTIONS = {
  version: "1.1" as const,
  intAsBigInt: true,
  customTags: [RAW_TAG],
  prettyErrors: true,
};

/** JSON input is read as JSON (1e3 is a number, "yes" a string). */
export const JSON_OPTIONS = {
  schema: "json" as const,
  intAsBigInt: true,
  prettyErrors: true,
};

/** True when the whole stream is JSON (then it is read with JSON's meaning). */
export function isJsonStream(source: string): boolean {
  const docs = parseAllDocuments(source, JSON_OPTIONS);
  return Array.isArray(docs) && docs.every((d) => d.errors.length === 0);
}

/**
 * A YAML 1.1 document holding a JSON document's values. Numbers are printed
 * so that a YAML 1.1 reader gets the same number back (`1e-7` would read as
 * a string there, `1.0e-7` does not).
 */
export function fromJson(doc: Document.Parsed): Document {
  return new Document(doc.toJS(), YAML_OPTIONS);
}

/**
 * Rewrites JSON floats (after injection) as YAML 1.1 float text, and quotes
 * the strings a YAML 1.1 reader takes for merge (`<<`) or value (`=`) keys.
 */
export function floatsForYaml11(doc: Document): void {
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === "number") node.value = yaml11Float(node.value);
      if (node.value === "<<" || node.value === "=") {
        node.value = new RawText(`"${node.value}"`);
      }
    },
  });
}

/** The text of a JSON float that YAML 1.1 readers read as that float. */
function yaml11Float(value: number): RawText | number {
  if (!Number.isFinite(value) || Number.isInteger(value)) return value;
  const text = String(value);
  if (text.includes(".") || !text.includes("e")) return value;
  return new RawText(text.replace("e", ".0e"));
}
