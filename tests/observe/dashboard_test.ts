import assert from "node:assert/strict";
import { createMetrics } from "../../lib/observe/metrics.ts";

const DASHBOARD = new URL(
  "../../deploy/grafana/mca-dashboard.json",
  import.meta.url,
);
const PROMQL_WORDS = new Set(
  "sum min max avg count by without rate increase histogram_quantile"
    .split(" "),
);

/** Every panel `expr` and templating query of the dashboard. */
function queries(dashboard: Dashboard): string[] {
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  const vars = dashboard.templating.list
    .filter((v) => v.type === "query")
    .map((v) => String(v.query));
  return [...exprs, ...vars];
}

interface Dashboard {
  panels: { targets: { expr: string }[] }[];
  templating: { list: { type: string; query: unknown }[] };
}

/** Metric names a PromQL expression reads (labels, ranges, strings removed). */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, "")
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without)\s*\([^)]*\)/g, "")
    .replace(/label_values\(([^,)]*)(,[^)]*)?\)/g, "$1")
    .replace(/\$\w+/g, "");
  return (bare.match(/[A-Za-z_:][A-Za-z0-9_:]*/g) ?? [])
    .filter((w) => !PROMQL_WORDS.has(w));
}

async function exported(): Promise<Set<string>> {
  const metrics = createMetrics({
    health: () => ({ names: () => ["local"], isHealthy: () => true }),
    audit: () => ({ written: 0, dropped: 0, errors: 0 }),
  });
  const names = new Set<string>();
  for (const line of (await metrics.text.metrics()).split("\n")) {
    const m = line.match(/^# TYPE (\S+) (\S+)$/);
    if (!m) continue;
    names.add(m[1]);
    if (m[2] === "histogram") {
      for (const s of ["_bucket", "_count", "_sum"]) names.add(m[1] + s);
    }
  }
  return names;
}

Deno.test("dashboard: every metric its queries read is one MCA exports", async () => {
  const dashboard = JSON.parse(await Deno.readTextFile(DASHBOARD));
  const known = await exported();
  const used = new Set(queries(dashboard).flatMap(metricNames));
  assert.ok(used.size >= 10, `the dashboard reads metrics (${[...used]})`);
  for (const name of used) {
    assert.ok(
      known.has(name),
      `${name} is used by the dashboard but not exported`,
    );
  }
  for (
    const must of [
      "mca_requests_total",
      "mca_request_duration_seconds_bucket",
      "mca_upstream_request_duration_seconds_bucket",
      "mca_long_running_requests",
      "mca_cluster_up",
    ]
  ) {
    assert.ok(used.has(must), `the dashboard shows ${must}`);
  }
});

Deno.test("dashboard: the name check catches a misspelt metric", () => {
  assert.deepEqual(
    metricNames('sum by (cluster) (rate(mca_request_total{job=~"$job"}[5m]))'),
    ["mca_request_total"],
  );
});
