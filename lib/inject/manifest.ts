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

import { isAlias, isMap, isScalar, isSeq, parseAllDocuments } from "yaml";
import type { Document, Node, YAMLMap } from "yaml";
import {
  floatsForYaml11,
  fromJson,
  isJsonStream,
  JSON_OPTIONS,
  YAML_OPTIONS,
} from "./json_stream.ts";
import { type InjectOptions, injectPodSpec } from "./pod_spec.ts";
import { InjectError, type JsonObject } from "./pod_json.ts";
import { podSpecPath } from "./workloads.ts";
import { mergeInto } from "./yaml_merge.ts";
import {
  checkDepth,
  checkPathNode,
  checkPodSpec,
  keepSourceText,
  lineOf,
  MAX_DEPTH,
  referencedAnchors,
} from "./yaml_guard.ts";

const NO_INPUT = "no input: the stream holds no Kubernetes object (only " +
  "whitespace, comments or empty documents); pipe a Pod manifest (YAML or JSON) into mca --inject";

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

/** A scalar's value; an alias to a scalar (`kind: *k`) is followed. */
function scalarValue(node: unknown, ctx: Context): unknown {
  const target = isAlias(node) ? node.resolve(ctx.doc) : node;
  return isScalar(target) ? target.value : undefined;
}

function firstLine(message: string): string {
  return message.split("\n")[0];
}
