/**
 * The "per-Pod cost" table: what each proxy costs a Pod that carries it,
 * from the load cells of the same run, beside the figure Istio publishes for
 * its Envoy sidecar. CPU-seconds per 1,000 calls is the proxy's CPU time per
 * request × 1,000, so it compares directly with a vCPU-per-1,000-rps figure.
 *
 * @module
 */

import type { Cell } from "./matrix.ts";

/** Istio's published sidecar cost (Envoy, 1,000 rps): vCPU and memory. */
const ENVOY_REFERENCE = "Envoy (Istio's published figure): 0.35 CPU-s per " +
  "1,000 calls (0.35 vCPU at 1,000 rps), about 40 MB.";

const PROXIES = ["mca", "kubectl-proxy", "nginx"];

function cpuSecondsPer1000(cells: Cell[], find: Partial<Cell>): string {
  const c = cells.find((x) =>
    Object.entries(find).every(([k, v]) => x[k as keyof Cell] === v)
  );
  const us = c?.proxyCpuUsPerReq;
  return us === undefined ? "—" : (us / 1000).toFixed(2);
}

/** Markdown lines of the table, one block per upstream; empty without cells. */
export function renderPerPodCost(
  load: Cell[],
  rssAfterLoadMiB: Record<string, Record<string, number>>,
): string[] {
  if (load.length === 0) return [];
  const lines = [
    "## Per-Pod cost",
    "",
    "CPU-seconds per 1,000 calls = the proxy's CPU time per request in the load cell × 1,000; " +
    "RSS after the whole load matrix. " + ENVOY_REFERENCE,
    "",
    "| upstream | proxy | RSS MiB | CPU-s / 1,000 GET (c=1) | (c=16) | CPU-s / 1,000 1 MB LIST (c=1) |",
    "|---|---|---|---|---|---|",
  ];
  for (const up of [...new Set(load.map((c) => c.upstream))]) {
    const cells = load.filter((c) => c.upstream === up);
    for (const path of PROXIES) {
      const rss = rssAfterLoadMiB[up]?.[path];
      lines.push(
        `| ${up} | ${path} | ${rss ?? "—"} | ${
          cpuSecondsPer1000(cells, { path, workload: "GET", concurrency: 1 })
        } | ${
          cpuSecondsPer1000(cells, { path, workload: "GET", concurrency: 16 })
        } | ${
          cpuSecondsPer1000(cells, { path, workload: "LIST", concurrency: 1 })
        } |`,
      );
    }
  }
  lines.push("");
  return lines;
}
