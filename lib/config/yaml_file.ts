/**
 * Reading one of MCA's YAML configuration files (routing, call policy, audit
 * policy) so that every error names the file and line (`file:line: what`):
 * a rejected reload must point at the line to fix. The three parsers share
 * this so they parse, locate and reject unknown keys alike and differ only in
 * what they check.
 *
 * @module
 */

import { isScalar, LineCounter, parseDocument } from "yaml";
import type { Node, Pair, ParsedNode, YAMLMap } from "yaml";

/** Throws the caller's error for a node; its line comes from the node. */
export type Fail = (node: unknown, message: string) => never;

/** A parsed file: its root node and the line-aware helpers for its nodes. */
export interface YamlFile {
  /** The document's root; null for an empty file. */
  root: ParsedNode | null;
  /** Throws `file:line: message`, the line being `node`'s (1 if unknown). */
  fail: Fail;
  /** The line `node` starts on (1 if it has no position). */
  line(node: unknown): number;
}

/** Where the text came from and how its errors are made. */
export interface ReadOptions {
  file: string;
  /** Builds the parser's own error class, so callers can tell it apart. */
  error: (message: string) => Error;
}

/**
 * Parses `text`; a YAML syntax error is thrown at once as
 * `file:line: invalid YAML: <first line of the YAML library's message>`.
 */
export function readYamlFile(text: string, options: ReadOptions): YamlFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const line = (node: unknown) => {
    const offset = (node as Node | undefined | null)?.range?.[0];
    return offset === undefined ? 1 : lines.linePos(offset).line;
  };
  const fail: Fail = (node, message) => {
    throw options.error(`${options.file}:${line(node)}: ${message}`);
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw options.error(
      `${options.file}:${e.linePos?.[0]?.line ?? 1}: invalid YAML: ${
        e.message.split("\n")[0]
      }`,
    );
  }
  return { root: doc.contents, fail, line };
}

/** A mapping entry's key as text; "" for a non-scalar key. */
export function keyText(pair: Pair): string {
  return String(isScalar(pair.key) ? pair.key.value : "");
}

/** How {@linkcode checkKeys} words and throws its error. */
export interface CheckKeysOptions {
  fail: Fail;
  /** The error for an unknown key (given as written). */
  message: (key: string) => string;
}

/**
 * Fails at the first key of `map` that is not `allowed`: a misspelt key
 * would otherwise be ignored and silently change what the file means.
 */
export function checkKeys(
  map: YAMLMap,
  allowed: ReadonlySet<string> | readonly string[],
  options: CheckKeysOptions,
): void {
  const known: ReadonlySet<string> = allowed instanceof Set
    ? allowed
    : new Set(allowed);
  for (const pair of map.items) {
    const key = keyText(pair);
    if (!known.has(key)) options.fail(pair.key, options.message(key));
  }
}
