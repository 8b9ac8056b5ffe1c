/**
 * YAML/JSON manifest streams for `mca --inject`.
 *
 * Finds every Pod spec in a stream (bare Pods, `List`s, workload pod
 * templates), runs the pure {@link injectPodSpec} on it, and writes the result
 * back into the parsed YAML document so that the user's comments and key order
 * survive. All-or-nothing: any error aborts the whole stream before a single
 * byte is produced.
 *
 * @module
 */

import {
  Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  parseAllDocuments,
  visit,
} from "yaml";
import type { Node, YAMLMap, YAMLSeq } from "yaml";
import {
  InjectError,
  type InjectOptions,
  injectPodSpec,
  type JsonObject,
} from "./pod_spec.ts";
import {
  checkDepth,
  checkPathNode,
  checkPodSpec,
  keepSourceText,
  lineOf,
  MAX_DEPTH,
  RAW_TAG,
  RawText,
  referencedAnchors,
} from "./yaml_guard.ts";

/** YAML 1.1 (what Kubernetes reads), exact integers, our verbatim tag. */
const YAML_OPTIONS = {
  version: "1.1" as const,
  intAsBigInt: true,
  customTags: [RAW_TAG],
  prettyErrors: true,
};

/** JSON input is read as JSON (1e3 is a number, "yes" a string). */
const JSON_OPTIONS = {
  schema: "json" as const,
  intAsBigInt: true,
  prettyErrors: true,
};

const NO_INPUT = "no input: the stream holds no Kubernetes object (only " +
  "whitespace, comments or empty documents); pipe a Pod manifest (YAML or JSON) into mca --inject";

/**
 * Where each workload kind keeps its Pod spec, keyed by `group/kind` so that
 * a custom resource that happens to be called `Job` passes through untouched.
 */
const POD_SPEC_PATHS: Record<string, string[]> = {
  "/Pod": ["spec"],
  "/PodTemplate": ["template", "spec"],
  "/ReplicationController": ["spec", "template", "spec"],
  "apps/Deployment": ["spec", "template", "spec"],
  "apps/StatefulSet": ["spec", "template", "spec"],
  "apps/DaemonSet": ["spec", "template", "spec"],
  "apps/ReplicaSet": ["spec", "template", "spec"],
  "batch/Job": ["spec", "template", "spec"],
  "batch/CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
};

/** The Pod spec path of an object, or undefined for kinds without one. */
function podSpecPath(apiVersion: unknown, kind: string): string[] | undefined {
  if (typeof apiVersion !== "string" || apiVersion === "") {
    // No apiVersion: judge by kind alone, as the user clearly meant one.
    const match = Object.keys(POD_SPEC_PATHS).find((k) =>
      k.endsWith("/" + kind)
    );
    return match ? POD_SPEC_PATHS[match] : undefined;
  }
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
  return POD_SPEC_PATHS[`${group}/${kind}`];
}

/**
 * Injects every Pod spec found in a YAML or JSON stream and returns the new
 * stream as YAML.
 *
 * Throws {@link InjectError} naming the document (and line, where known) for
 * any input that cannot be injected.
 */
export function injectManifests(
  source: string,
  options: InjectOptions = {},
): string {
  try {
    return injectStream(source, options);
  } catch (error) {
    if (error instanceof RangeError) {
      // A last line of defence behind checkDepth: never a stack trace.
      throw new InjectError(TOO_DEEP);
    }
    throw error;
  }
}

const TOO_DEEP = `the input nests deeper than ${MAX_DEPTH} levels; ` +
  "no Kubernetes object does: check the file";

function injectStream(source: string, options: InjectOptions): string {
  if (source.trim() === "") throw new InjectError(NO_INPUT);
  const asJson = /^\s*[[{]/.test(source) && isJsonStream(source);
  const docs = parseAllDocuments(source, asJson ? JSON_OPTIONS : YAML_OPTIONS);
  if (!Array.isArray(docs)) throw new InjectError(NO_INPUT);
  const outputs: string[] = [];
  docs.forEach((doc, index) => {
    const where = docs.length > 1 ? `document ${index + 1}: ` : "";
    if (doc.errors.length > 0) {
      if (/Maximum call stack/.test(doc.errors[0].message)) {
        throw new InjectError(`${where}${TOO_DEEP}`);
      }
      throw new InjectError(
        `${where}invalid YAML/JSON: ${firstLine(doc.errors[0].message)}`,
      );
    }
    if (
      doc.contents === null ||
      (isScalar(doc.contents) && doc.contents.value === null)
    ) {
      return; // an empty document carries nothing to keep
    }
    checkDepth(doc, where);
    const target = asJson ? fromJson(doc) : doc;
    const ctx = {
      source,
      options,
      doc: target,
      anchors: asJson ? new Set<string>() : referencedAnchors(doc),
    };
    try {
      injectNode(target.contents as Node, where, ctx);
    } catch (error) {
      if (error instanceof InjectError && !error.message.startsWith(where)) {
        throw new InjectError(`${where}${error.message}`);
      }
      throw error;
    }
    if (asJson) floatsForYaml11(target);
    else keepSourceText(target, source);
    outputs.push(target.toString({ lineWidth: 0 }));
  });
  if (outputs.length === 0) throw new InjectError(NO_INPUT);
  return joinDocuments(outputs);
}

/** True when the whole stream is JSON (then it is read with JSON's meaning). */
function isJsonStream(source: string): boolean {
  const docs = parseAllDocuments(source, JSON_OPTIONS);
  return Array.isArray(docs) && docs.every((d) => d.errors.length === 0);
}

/**
 * A YAML 1.1 document holding a JSON document's values. Numbers are printed
 * so that a YAML 1.1 reader gets the same number back (`1e-7` would read as
 * a string there, `1.0e-7` does not).
 */
function fromJson(doc: Document.Parsed): Document {
  return new Document(doc.toJS(), YAML_OPTIONS);
}

/**
 * Rewrites JSON floats (after injection) as YAML 1.1 float text, and quotes
 * the strings a YAML 1.1 reader takes for merge (`<<`) or value (`=`) keys.
 */
function floatsForYaml11(doc: Document): void {
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

function joinDocuments(outputs: string[]): string {
  return outputs.map((text, i) => {
    const body = text.endsWith("\n") ? text : text + "\n";
    if (i === 0) return body;
    // A directive (%YAML) may only follow a document closed with "...".
    if (body.startsWith("%")) {
      return outputs[i - 1].trimEnd().endsWith("\n...") ? body : "...\n" + body;
    }
    if (body.startsWith("---")) return body;
    return "---\n" + body;
  }).join("");
}

/** What every step needs to report errors precisely and to inject. */
interface Context {
  source: string;
  options: InjectOptions;
  doc: Document;
  /** Anchors some alias repeats: rewriting them would change the copies. */
  anchors: Set<string>;
}

/** Injects one Kubernetes object (or a list of them) in place. */
function injectNode(node: Node, where: string, ctx: Context): void {
  if (isAlias(node)) checkPathNode(node, ctx);
  if (!isMap(node)) {
    throw new InjectError(
      `${where}expected a Kubernetes object (a mapping with kind), got ${
        isSeq(node) ? "a sequence" : "a scalar"
      }`,
    );
  }
  const kind = scalarValue(node.get("kind", true), ctx);
  if (typeof kind !== "string" || kind === "") {
    throw new InjectError(
      `${where}the object has no kind${
        lineOf(node, ctx.source)
      }: mca --inject expects Kubernetes manifests such as a Pod`,
    );
  }
  if (kind === "List" || (kind.endsWith("List") && node.has("items"))) {
    checkPathNode(node, ctx);
    const items = node.get("items", true);
    if (items === undefined || items === null) return;
    checkPathNode(items, ctx);
    if (!isSeq(items)) {
      throw new InjectError(`${where}${kind}.items must be a list`);
    }
    items.items.forEach((item, i) => {
      injectNode(item as Node, `${where}${kind} item ${i + 1}: `, ctx);
    });
    return;
  }
  const apiVersion = scalarValue(node.get("apiVersion", true), ctx);
  const path = podSpecPath(apiVersion, kind);
  if (!path) return;
  const name = scalarValue(node.getIn(["metadata", "name"], true), ctx);
  const label = `${where}${kind}${name ? ` ${JSON.stringify(name)}` : ""}: `;
  try {
    injectObject(node, path, { ...ctx, kind });
  } catch (error) {
    if (error instanceof InjectError) {
      throw new InjectError(`${label}${error.message}`);
    }
    throw error;
  }
}

/** Walks to the Pod spec (refusing aliases on the way) and injects it. */
function injectObject(
  node: YAMLMap,
  path: string[],
  ctx: Context & { kind: string },
): void {
  let spec: unknown = node;
  for (const key of path) {
    checkPathNode(spec, ctx);
    spec = isMap(spec) ? spec.get(key, true) : undefined;
  }
  checkPathNode(spec, ctx);
  if (spec === undefined || spec === null || !isMap(spec)) {
    throw new InjectError(
      `no ${path.join(".")} found${
        lineOf(node, ctx.source)
      }: a ${ctx.kind} needs a Pod spec to inject into`,
    );
  }
  checkPodSpec(spec, ctx.source);
  const injected = injectPodSpec(spec.toJSON() as JsonObject, ctx.options);
  mergeInto(spec, injected, ctx.doc);
}

/**
 * Makes a YAML map equal to a plain object while keeping every node that is
 * already equal, so comments, key order and scalar text of untouched parts
 * survive.
 */
function mergeInto(map: YAMLMap, wanted: JsonObject, doc: Document): void {
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
  const byName = new Map<string, unknown>();
  for (const item of seq.items) {
    if (isMap(item)) {
      const name = isScalar(item.get("name", true))
        ? (item.get("name", true) as { value: unknown }).value
        : undefined;
      if (typeof name === "string" && !byName.has(name)) byName.set(name, item);
    }
  }
  seq.items = wanted.map((value, i) => {
    const name = isPlainObject(value) ? value.name : undefined;
    const current = typeof name === "string" ? byName.get(name) : seq.items[i];
    if (typeof name === "string") byName.delete(name);
    return mergedNode(current, value, doc);
  });
}

function isPlainObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** A scalar's value; an alias to a scalar (`kind: *k`) is followed. */
function scalarValue(node: unknown, ctx: Context): unknown {
  const target = isAlias(node) ? node.resolve(ctx.doc) : node;
  return isScalar(target) ? target.value : undefined;
}

function firstLine(message: string): string {
  return message.split("\n")[0];
}
