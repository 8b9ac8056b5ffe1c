/**
 * The layering check of `deno task check`: fails when an import crosses a
 * line the architecture draws (design/architecture.md, "Layers").
 *
 * - the transport (`proxy/`) knows nothing of routing, policy or the
 *   pipeline; routing knows nothing of sockets;
 * - pure folders and modules import no `node:*` value and use no `Deno.*`;
 * - only `sidecar/`, `webhook/` and `main.ts` put the pipeline together;
 * - `cli/` (flags, usage, mode runners) starts modes through their entry
 *   points and is imported by `main.ts` only;
 * - no import cycles inside `lib/`.
 *
 * Run: `deno run --allow-read tests/support/check_layers.ts`.
 *
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const LIB = join(ROOT, "lib");

/** folder → folders it must not import. */
const FORBIDDEN: Record<string, string[]> = {
  "proxy": ["routing", "multicluster", "pipeline", "policy", "sidecar"],
  "kube": ["proxy", "routing", "multicluster", "pipeline", "sidecar"],
  "inject": ["proxy", "routing", "multicluster", "pipeline", "sidecar"],
  "routing": ["proxy", "pipeline", "multicluster"],
  "observe": ["proxy", "routing", "multicluster", "pipeline"],
  "audit": ["proxy", "routing", "multicluster", "pipeline"],
  "webhook": ["proxy", "routing", "multicluster"],
  "policy": ["proxy", "pipeline", "multicluster"],
  "clusters": ["proxy", "pipeline", "multicluster"],
  "multicluster": ["pipeline", "sidecar"],
  // Shared helpers of the configuration parsers: a leaf, it imports no folder.
  "config": [
    "audit",
    "clusters",
    "inject",
    "kube",
    "multicluster",
    "observe",
    "pipeline",
    "policy",
    "proxy",
    "routing",
    "sidecar",
    "webhook",
  ],
  "cli": ["proxy", "routing", "multicluster", "pipeline"],
};
/** Only these folders may import the pipeline. */
const PIPELINE_USERS = new Set(["sidecar", "webhook", "pipeline"]);
/** Pure: no `node:*` value imports, no `Deno.` calls. */
const PURE = [
  "kube/label_selector.ts",
  "kube/request_info.ts",
  "kube/field_selector.ts",
  "kube/resource_version.ts",
  "inject/",
  "config/",
  "routing/config.ts",
  "routing/rule.ts",
  "routing/match.ts",
  "routing/router.ts",
  "multicluster/rewrite.ts",
  "multicluster/policy_step.ts",
  "multicluster/fanout_request.ts",
  "multicluster/answer_rewrite.ts",
  "multicluster/list_merge.ts",
  "multicluster/watch_merge.ts",
  "observe/observer.ts",
  "policy/config.ts",
  "policy/evaluate.ts",
  "policy/identity.ts",
  "audit/policy.ts",
  "audit/policy_rule.ts",
  "audit/event.ts",
  "webhook/decide.ts",
  "webhook/admission.ts",
];

function* walk(dir: string): Generator<string> {
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* walk(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

const IMPORT =
  /^\s*(import|export)\s+(type\s+)?(?:[^"';]*?from\s+)?["']([^"']+)["']/gm;

interface Edge {
  to: string;
  typeOnly: boolean;
}

function importsOf(file: string): Edge[] {
  const text = Deno.readTextFileSync(file);
  const out: Edge[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[3];
    const typeOnly = m[2] !== undefined;
    out.push({
      to: spec.startsWith(".") ? resolve(dirname(file), spec) : spec,
      typeOnly,
    });
  }
  return out;
}

function folderOf(path: string): string {
  return relative(LIB, path).split("/")[0];
}

function check(): string[] {
  const problems: string[] = [];
  const graph = new Map<string, string[]>();
  for (const file of walk(LIB)) {
    const rel = relative(LIB, file);
    const folder = folderOf(file);
    const edges = importsOf(file);
    graph.set(file, edges.filter((e) => e.to.startsWith(LIB)).map((e) => e.to));
    const pure = PURE.some((p) =>
      rel === p || (p.endsWith("/") && rel.startsWith(p))
    );
    for (const edge of edges) {
      if (edge.to.startsWith(LIB)) {
        const target = folderOf(edge.to);
        if (target === folder) continue;
        if (FORBIDDEN[folder]?.includes(target)) {
          problems.push(
            `lib/${rel} imports lib/${
              relative(LIB, edge.to)
            }: ${folder}/ must not depend on ${target}/`,
          );
        }
        if (target === "cli") {
          problems.push(
            `lib/${rel} imports lib/${
              relative(LIB, edge.to)
            }: only main.ts uses cli/`,
          );
        }
        if (target === "pipeline" && !PIPELINE_USERS.has(folder)) {
          problems.push(
            `lib/${rel} imports the pipeline: only sidecar/ and webhook/ put it together`,
          );
        }
      } else if (pure && edge.to.startsWith("node:") && !edge.typeOnly) {
        problems.push(`lib/${rel} is pure but imports ${edge.to}`);
      }
    }
    if (pure && /\bDeno\./.test(Deno.readTextFileSync(file))) {
      problems.push(`lib/${rel} is pure but uses Deno.*`);
    }
  }
  problems.push(...cycles(graph));
  return problems;
}

function cycles(graph: Map<string, string[]>): string[] {
  const state = new Map<string, "open" | "done">();
  const found: string[] = [];
  const stack: string[] = [];
  function visit(node: string): void {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") {
        const loop = stack.slice(stack.indexOf(next)).concat(next);
        found.push(
          `import cycle: ${loop.map((p) => relative(ROOT, p)).join(" → ")}`,
        );
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  }
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return found;
}

if (import.meta.main) {
  const problems = check();
  for (const p of problems) console.error(`layering: ${p}`);
  if (problems.length > 0) {
    console.error(
      `layering: ${problems.length} problem(s); see design/architecture.md "Layers"`,
    );
    Deno.exit(1);
  }
  console.log("layering: ok");
}
