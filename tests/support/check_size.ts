/**
 * The size check of `deno task check`: a `lib/` module stays under
 * {@linkcode MAX_MODULE_LINES} lines and a function under
 * {@linkcode MAX_FUNCTION_LINES}, unless the code says why right where it is
 * long. The reason is a comment in the module's first JSDoc block
 * (`@size <why>`) or directly above the function (`// long: <why>`), so a
 * reviewer reads the excuse beside the code rather than in a list here.
 *
 * Functions are found with the TypeScript parser (declarations, methods,
 * arrows and function expressions alike), so a brace in a string or a
 * template never fools the count.
 *
 * Run: `deno run --allow-read tests/support/check_size.ts [--report]`.
 * `--report` prints every function over the limit, excused or not.
 *
 * @module
 */

import ts from "typescript";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const MAX_MODULE_LINES = 300;
const MAX_FUNCTION_LINES = 60;

interface Finding {
  file: string;
  line: number;
  what: string;
  lines: number;
  excused: boolean;
}

function* walk(dir: string): Generator<string> {
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* walk(path);
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
      yield path;
    }
  }
}

function nameOf(node: ts.Node, source: ts.SourceFile): string {
  const named = node as { name?: ts.Node };
  if (named.name) return named.name.getText(source);
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) {
    return parent.name.getText(source);
  }
  if (parent && ts.isPropertyAssignment(parent)) {
    return parent.name.getText(source);
  }
  return "(anonymous)";
}

/** The comment lines directly above `node`'s statement. */
function leadingComments(node: ts.Node, source: ts.SourceFile): string {
  let anchor: ts.Node = node;
  while (
    anchor.parent && !ts.isSourceFile(anchor.parent) &&
    !ts.isBlock(anchor.parent) && !ts.isClassDeclaration(anchor.parent) &&
    !ts.isObjectLiteralExpression(anchor.parent)
  ) anchor = anchor.parent;
  const text = source.getFullText();
  const ranges = ts.getLeadingCommentRanges(text, anchor.getFullStart()) ?? [];
  return ranges.map((r) => text.slice(r.pos, r.end)).join("\n");
}

function functionsOf(file: string): Finding[] {
  const text = Deno.readTextFileSync(file);
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Finding[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && (node as { body?: ts.Node }).body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source));
      const end = source.getLineAndCharacterOfPosition(node.getEnd());
      const lines = end.line - start.line + 1;
      if (lines > MAX_FUNCTION_LINES) {
        out.push({
          file: relative(ROOT, file),
          line: start.line + 1,
          what: `function ${nameOf(node, source)}`,
          lines,
          excused: /\blong:\s*\S/.test(leadingComments(node, source)),
        });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
  if (lines > MAX_MODULE_LINES) {
    out.push({
      file: relative(ROOT, file),
      line: 1,
      what: "module",
      lines,
      excused: /@size\s+\S/.test(text.slice(0, text.indexOf("*/") + 2)),
    });
  }
  return out;
}

function main(): void {
  const report = Deno.args.includes("--report");
  const findings = [...walk(join(ROOT, "lib"))].flatMap(functionsOf)
    .concat(functionsOf(join(ROOT, "main.ts")));
  const failing = findings.filter((f) => !f.excused);
  for (const f of report ? findings : failing) {
    const limit = f.what === "module" ? MAX_MODULE_LINES : MAX_FUNCTION_LINES;
    console.error(
      `${f.file}:${f.line}: ${f.what} is ${f.lines} lines (limit ${limit})` +
        (f.excused ? " — excused beside the code" : ""),
    );
  }
  if (failing.length > 0) {
    console.error(
      `check_size: ${failing.length} over the limit. Split them, or write ` +
        "why beside the code: `// long: <why>` above a function, " +
        "`@size <why>` in a module's first JSDoc block.",
    );
    Deno.exit(1);
  }
  console.log(`size: ok (${findings.length} excused beside the code)`);
}

main();
