/**
 * The YAML rules of `mca --inject`: what it refuses inside a Pod spec and
 * how it keeps the user's bytes everywhere else.
 *
 * The rule (design/phase-1-mitm-proxy.md, ADR 0017): inject keeps the meaning
 * of every byte it does not own, or refuses with one line. Kubernetes reads
 * manifests as YAML 1.1, so every value inject reads is read as YAML 1.1, and
 * every scalar it keeps is written back as the exact text the user wrote.
 *
 * @module
 */

import { isAlias, isMap, isPair, isScalar, isSeq, visit } from "yaml";
import type { Document, Node, ScalarTag } from "yaml";
import { InjectError } from "./pod_spec.ts";

/** Deeper input is refused before any recursive step can overflow. */
export const MAX_DEPTH = 200;

/** The source text of one scalar, written back verbatim. */
export class RawText {
  constructor(readonly text: string) {}
}

/** A default tag that writes a {@link RawText} as its text, with no tag. */
export const RAW_TAG: ScalarTag = {
  tag: "tag:mca.invalid,2026:raw",
  default: true,
  identify: (value) => value instanceof RawText,
  resolve: (text) => text,
  stringify: (item) => (item as { value: RawText }).value.text,
};

/** Tags whose meaning inject understands inside a Pod spec. */
const CORE_TAGS = new Set(
  ["str", "int", "float", "bool", "null", "map", "seq"].map((t) =>
    `tag:yaml.org,2002:${t}`
  ),
);

/** The line number of a node, or "" where unknown. */
export function lineOf(node: unknown, source: string): string {
  const range = (node as { range?: [number, number, number] } | undefined)
    ?.range;
  if (!range) return "";
  return ` (line ${source.slice(0, range[0]).split("\n").length})`;
}

/** Throws unless the document nests at most {@link MAX_DEPTH} levels. */
export function checkDepth(doc: Document.Parsed, where: string): void {
  const stack: [unknown, number][] = [[doc.contents, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > MAX_DEPTH) {
      throw new InjectError(
        `${where}the input nests deeper than ${MAX_DEPTH} levels; ` +
          "no Kubernetes object does: check the file",
      );
    }
    if (isMap(node) || isSeq(node)) {
      for (const item of node.items) stack.push([item, depth + 1]);
    } else if (isPair(node)) {
      stack.push([node.key, depth], [node.value, depth]);
    }
  }
}

function aliasRefusal(what: string, line: string): InjectError {
  return new InjectError(
    `YAML ${what} inside a Pod spec are not supported${line}; ` +
      "expand them first (mca --inject keeps the meaning of what it does not own or refuses)",
  );
}

/** Anchors that some alias of the document refers to. */
export function referencedAnchors(doc: Document.Parsed): Set<string> {
  const names = new Set<string>();
  visit(doc, {
    Alias(_key, node) {
      names.add(node.source);
    },
  });
  return names;
}

/**
 * Throws when a node on the way to a Pod spec is an alias, holds a merge key,
 * or carries an anchor that an alias elsewhere repeats (that copy would
 * silently change when inject rewrites the original).
 */
export function checkPathNode(
  node: unknown,
  ctx: { source: string; anchors: Set<string> },
): void {
  if (isAlias(node)) {
    throw aliasRefusal("aliases/merge keys", lineOf(node, ctx.source));
  }
  const anchor = (node as { anchor?: string } | undefined)?.anchor;
  if (anchor !== undefined && ctx.anchors.has(anchor)) {
    throw aliasRefusal(
      `anchors repeated by an alias (&${anchor})`,
      lineOf(node, ctx.source),
    );
  }
  checkTag(node, ctx.source);
  if (isMap(node) && node.items.some((p) => isMergeKey(p.key))) {
    throw aliasRefusal("aliases/merge keys", lineOf(node, ctx.source));
  }
}

function isMergeKey(key: unknown): boolean {
  return isScalar(key) &&
    (key.value === "<<" || key.tag === "tag:yaml.org,2002:merge" ||
      (key as { source?: string }).source === "<<");
}

/**
 * Throws for anything inside a Pod spec whose meaning a rewrite could change:
 * aliases, anchors, merge keys, non-string keys and tags other than YAML's
 * core ones (`!!binary`, `!!omap`, `!!set`, custom tags).
 */
export function checkPodSpec(spec: Node, source: string): void {
  visit(spec, (_key, node) => {
    if (isAlias(node)) {
      throw aliasRefusal("aliases/merge keys", lineOf(node, source));
    }
    if (isPair(node)) {
      if (isMergeKey(node.key)) {
        throw aliasRefusal("aliases/merge keys", lineOf(node.key, source));
      }
      if (!isScalar(node.key) || typeof node.key.value !== "string") {
        throw new InjectError(
          `a Pod spec key is not a string${
            lineOf(node.key, source)
          }; Kubernetes field names are strings: quote it`,
        );
      }
      return;
    }
    if ((node as { anchor?: string }).anchor !== undefined) {
      throw aliasRefusal("anchors", lineOf(node, source));
    }
    checkTag(node, source);
  });
}

/** Throws for a tag other than YAML's core ones. */
function checkTag(node: unknown, source: string): void {
  const tag = (node as { tag?: string } | undefined)?.tag;
  if (tag !== undefined && !CORE_TAGS.has(tag)) {
    throw new InjectError(
      `YAML tag ${
        tag.replace("tag:yaml.org,2002:", "!!")
      } inside a Pod spec is not supported${
        lineOf(node, source)
      }; write the value as a plain string`,
    );
  }
}

/**
 * Makes every single-line, untagged scalar that came from the input print as
 * the exact text it was read from (`0644`, `yes`, `1_000`, `0x1F` stay).
 * Run after the rewrite: created nodes have no source range and print as
 * YAML 1.1 (strings that would read as another type are quoted).
 */
export function keepSourceText(doc: Document, source: string): void {
  visit(doc, {
    Scalar(_key, node) {
      if (!node.range || node.tag !== undefined) return;
      if (node.value instanceof RawText) return;
      const text = source.slice(node.range[0], node.range[1]);
      // "<<" is a merge key: the library writes those pairs itself.
      if (text === "" || text === "<<" || /[\r\n]/.test(text)) return;
      if (text.startsWith("|") || text.startsWith(">")) return;
      node.value = new RawText(text);
    },
  });
}
