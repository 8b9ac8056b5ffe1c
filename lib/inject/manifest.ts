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

import { Document, isMap, isScalar, isSeq, parseAllDocuments } from "yaml";
import type { Node, YAMLMap, YAMLSeq } from "yaml";
import {
  InjectError,
  type InjectOptions,
  injectPodSpec,
  type JsonObject,
} from "./pod_spec.ts";

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
  if (source.trim() === "") {
    throw new InjectError(
      "no input: pipe a Pod manifest (YAML or JSON) into mca --inject",
    );
  }
  const docs = parseAllDocuments(source, { prettyErrors: true });
  if (!Array.isArray(docs)) {
    throw new InjectError("no documents found in the input");
  }
  const asJson = /^\s*[[{]/.test(source);
  const outputs: string[] = [];
  docs.forEach((doc, index) => {
    const where = docs.length > 1 ? `document ${index + 1}: ` : "";
    if (doc.errors.length > 0) {
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
    const target = asJson ? new Document(doc.toJS()) : doc;
    injectNode(target.contents as Node, where, { source, options });
    outputs.push(target.toString({ lineWidth: 0 }));
  });
  return joinDocuments(outputs);
}

function joinDocuments(outputs: string[]): string {
  return outputs.map((text, i) => {
    const body = text.endsWith("\n") ? text : text + "\n";
    if (i === 0 || body.startsWith("---")) return body;
    return "---\n" + body;
  }).join("");
}

/** What every step needs to report errors precisely and to inject. */
interface Context {
  source: string;
  options: InjectOptions;
}

/** Injects one Kubernetes object (or a list of them) in place. */
function injectNode(node: Node, where: string, ctx: Context): void {
  if (!isMap(node)) {
    throw new InjectError(
      `${where}expected a Kubernetes object (a mapping with kind), got ${
        isSeq(node) ? "a sequence" : "a scalar"
      }`,
    );
  }
  const kind = scalarValue(node.get("kind", true));
  if (typeof kind !== "string" || kind === "") {
    throw new InjectError(
      `${where}the object has no kind${
        lineOf(node, ctx)
      }: mca --inject expects Kubernetes manifests such as a Pod`,
    );
  }
  if (kind === "List" || (kind.endsWith("List") && node.has("items"))) {
    const items = node.get("items", true);
    if (items === undefined || items === null) return;
    if (!isSeq(items)) {
      throw new InjectError(`${where}${kind}.items must be a list`);
    }
    items.items.forEach((item, i) => {
      injectNode(item as Node, `${where}${kind} item ${i + 1}: `, ctx);
    });
    return;
  }
  const path = podSpecPath(scalarValue(node.get("apiVersion", true)), kind);
  if (!path) return;
  const spec = node.getIn(path, true) as Node | undefined;
  const name = scalarValue(node.getIn(["metadata", "name"], true));
  const label = `${where}${kind}${name ? ` ${JSON.stringify(name)}` : ""}: `;
  if (spec === undefined || spec === null || !isMap(spec)) {
    throw new InjectError(
      `${label}no ${path.join(".")} found${
        lineOf(node, ctx)
      }: a ${kind} needs a Pod spec to inject into`,
    );
  }
  let injected: JsonObject;
  try {
    injected = injectPodSpec(spec.toJSON() as JsonObject, ctx.options);
  } catch (error) {
    if (error instanceof InjectError) {
      throw new InjectError(`${label}${error.message}`);
    }
    throw error;
  }
  mergeInto(spec, injected);
}

/**
 * Makes a YAML map equal to a plain object while keeping every node that is
 * already equal, so comments and key order of untouched parts survive.
 */
function mergeInto(map: YAMLMap, wanted: JsonObject): void {
  for (const pair of [...map.items]) {
    const key = scalarValue(pair.key);
    if (typeof key !== "string" || !(key in wanted)) map.delete(pair.key);
  }
  for (const [key, value] of Object.entries(wanted)) {
    const current = map.get(key, true) as Node | undefined;
    map.set(key, mergedNode(current, value, map));
  }
}

function mergedNode(current: unknown, wanted: unknown, parent: Node): unknown {
  if (isMap(current) && isPlainObject(wanted)) {
    mergeInto(current, wanted);
    return current;
  }
  if (isSeq(current) && Array.isArray(wanted)) {
    mergeSeq(current, wanted, parent);
    return current;
  }
  if (isScalar(current) && current.value === wanted) return current;
  return createNode(wanted);
}

/** Sequences of named objects are matched by name, others by position. */
function mergeSeq(seq: YAMLSeq, wanted: unknown[], parent: Node): void {
  const byName = new Map<string, unknown>();
  for (const item of seq.items) {
    if (isMap(item)) {
      const name = scalarValue(item.get("name", true));
      if (typeof name === "string" && !byName.has(name)) byName.set(name, item);
    }
  }
  seq.items = wanted.map((value, i) => {
    const name = isPlainObject(value) ? value.name : undefined;
    const current = typeof name === "string" ? byName.get(name) : seq.items[i];
    if (typeof name === "string") byName.delete(name);
    return mergedNode(current, value, parent);
  });
}

function createNode(value: unknown): unknown {
  return new Document().createNode(value);
}

function isPlainObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function scalarValue(node: unknown): unknown {
  return isScalar(node) ? node.value : undefined;
}

function lineOf(node: Node, ctx: Context): string {
  if (!node.range) return "";
  const line = ctx.source.slice(0, node.range[0]).split("\n").length;
  return ` (line ${line})`;
}

function firstLine(message: string): string {
  return message.split("\n")[0];
}
