/**
 * Phase 3 real tier: `/metrics` after a known mix of calls through `mca`
 * to two real control planes (A = `local`, B = `east`), read back with a
 * real Prometheus parser (Python `prometheus_client`, text and OpenMetrics).
 *
 * The sidecar runs in-process (as in the fast tier) with A's real
 * service-account directory and B behind a kubeconfig in its clusters
 * directory. The mix: single-cluster LIST/GET/403 on A, discovery, LISTs
 * routed to B, round-robin creates, merged LISTs and a merged WATCH across
 * both, a routing reload accepted and one rejected; then B's kube-apiserver
 * stops, so a merged LIST leaves B out and a call pinned to B fails
 * upstream. Every counter is checked against that mix, every histogram for
 * consistent buckets, and no sample holds a token.
 */

import assert from "node:assert/strict";
import { request } from "node:https";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Sidecar, startSidecar } from "../../lib/sidecar/run.ts";
import {
  type Cluster,
  startCluster,
  writeProjectedVolume,
} from "../support/cluster.ts";
import {
  type Family,
  parseExposition,
  sumSamples as sum,
} from "../support/prom_parse.ts";
import { inProcessOptions } from "../support/in_process.ts";
import { REQUEST_DURATION_BUCKETS } from "../../lib/observe/metrics.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const NS = "mca-e2e";
const ROUTING = `default: local
rules:
  - name: merged
    match: {resources: [configmaps]}
    clusters: [local, east]
    strategy: round-robin
    partial: true # a LIST without east is still answered (left-out metrics)
  - name: east-events
    match: {resources: [events]}
    cluster: east
`;

function kubeconfig(cluster: Cluster, caPem: string, token: string): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name: "east",
      cluster: {
        server: cluster.url,
        "certificate-authority-data": btoa(caPem),
      },
    }],
    users: [{ name: "east", user: { token } }],
    contexts: [{ name: "east", context: { cluster: "east", user: "east" } }],
    "current-context": "east",
  });
}

interface Answer {
  status: number;
  text: string;
}

function call(
  port: number,
  ca: string,
  method: string,
  path: string,
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port,
      method,
      path,
      ca,
      agent: false,
      headers: {
        authorization: "Bearer placeholder",
        "user-agent": "metrics-e2e/1.0",
        ...(body ? { "content-type": "application/json" } : {}),
      },
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => text += c);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function until<T>(
  what: string,
  ms: number,
  f: () => Promise<T>,
) {
  const deadline = Date.now() + ms;
  while (true) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function scrape(port: number, openMetrics = false): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`, {
    headers: openMetrics
      ? { accept: "application/openmetrics-text; version=1.0.0" }
      : {},
  });
  assert.equal(r.status, 200);
  return await r.text();
}

/** Every histogram: cumulative buckets, `+Inf` = `_count`, the apiserver's bounds. */
function checkHistograms(families: Family[]): void {
  for (const f of families.filter((f) => f.type === "histogram")) {
    const series = new Map<string, { le: string; v: number }[]>();
    const counts = new Map<string, number>();
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      if (s.name.endsWith("_bucket")) {
        series.set(key, [...(series.get(key) ?? []), { le, v: s.value }]);
      } else if (s.name.endsWith("_count")) counts.set(key, s.value);
    }
    for (const [key, buckets] of series) {
      for (let i = 1; i < buckets.length; i++) {
        assert.ok(
          buckets[i].v >= buckets[i - 1].v,
          `${f.name} ${key} cumulative`,
        );
      }
      assert.equal(buckets.at(-1)!.le, "+Inf");
      assert.equal(
        buckets.at(-1)!.v,
        counts.get(key),
        `${f.name} +Inf = _count`,
      );
      if (f.name.startsWith("mca_")) {
        assert.deepEqual(
          buckets.slice(0, -1).map((b) => Number(b.le)),
          [...REQUEST_DURATION_BUCKETS],
        );
      }
    }
  }
}

Deno.test("metrics e2e: counters and histograms after a known mix of calls on two real clusters", async () => {
  const dir = await Deno.makeTempDir({
    dir: join(ROOT, "tmp"),
    prefix: "metrics-e2e-",
  });
  const [A, B] = await Promise.all([
    startCluster({ dir: join(dir, "a") }),
    startCluster({ dir: join(dir, "b") }),
  ]);
  let sidecar: Sidecar | undefined;
  const logs: string[] = [];
  try {
    const saDir = join(dir, "sa");
    const [tokenA, tokenB] = await Promise.all([
      A.writeServiceAccountDir(saDir),
      B.mintToken({ duration: "1h" }),
    ]);
    const clustersDir = join(dir, "clusters");
    await writeProjectedVolume(clustersDir, {
      "east.kubeconfig": kubeconfig(
        B,
        await Deno.readTextFile(B.caFile),
        tokenB,
      ),
    });
    const routingDir = join(dir, "routing");
    await writeProjectedVolume(routingDir, { "routing.yaml": ROUTING });
    sidecar = await startSidecar({
      ...inProcessOptions(dir, A, { saDir, clustersDir }),
      routingConfig: join(routingDir, "routing.yaml"),
      healthIntervalMs: 200,
      reloadIntervalMs: 50,
      log: (l) => logs.push(l),
      metrics: { hostname: "127.0.0.1", port: 0 },
    });
    const port = sidecar.proxy.port;
    const mport = sidecar.metrics!.port;
    const ca = await Deno.readTextFile(join(dir, "app", "ca.crt"));
    const c = (method: string, path: string, body?: string) =>
      call(port, ca, method, path, body);
    const ns = `/api/v1/namespaces/${NS}`;

    // The mix, with the answers each call must get.
    for (let i = 0; i < 3; i++) {
      assert.equal((await c("GET", `${ns}/pods`)).status, 200);
    }
    assert.equal((await c("GET", `${ns}/pods/nope`)).status, 404);
    assert.equal((await c("GET", `${ns}/secrets`)).status, 403);
    assert.equal((await c("GET", "/version")).status, 200);
    assert.equal((await c("GET", `${ns}/events`)).status, 200);
    for (const name of ["one", "two"]) {
      const cm = JSON.stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name },
      });
      assert.equal((await c("POST", `${ns}/configmaps`, cm)).status, 201);
    }
    for (let i = 0; i < 2; i++) {
      const list = await c("GET", `${ns}/configmaps`);
      assert.equal(list.status, 200);
      assert.ok(list.text.includes('"one"') && list.text.includes('"two"'));
    }
    // A merged watch: long-running while open, counted once it ends.
    const watch = c("GET", `${ns}/configmaps?watch=1&timeoutSeconds=15`);
    watch.catch(() => {}); // awaited below
    await until("the watch to be long-running", 14_000, async () => {
      const f = await parseExposition(await scrape(mport));
      return f.some((x) =>
        x.samples.some((s) =>
          s.name === "mca_long_running_requests" && s.value === 1 &&
          s.labels.verb === "WATCH" && s.labels.cluster === "east+local"
        )
      );
    });
    assert.equal((await watch).status, 200);

    // A reload accepted, then one rejected (unknown cluster).
    await writeProjectedVolume(routingDir, {
      "routing.yaml": ROUTING + "# v2\n",
    });
    await until(
      "the reload",
      10_000,
      () =>
        Promise.resolve(
          logs.some((l) => l.includes("routing configuration loaded")),
        ),
    );
    await writeProjectedVolume(routingDir, {
      "routing.yaml": ROUTING.replace("cluster: east", "cluster: north"),
    });
    await until(
      "the rejection",
      10_000,
      () =>
        Promise.resolve(
          logs.some((l) => l.includes("routing configuration rejected")),
        ),
    );

    // Both up, then B goes away.
    let f = await parseExposition(await scrape(mport));
    assert.equal(sum(f, "mca_cluster_up", { cluster: "local" }), 1);
    assert.equal(sum(f, "mca_cluster_up", { cluster: "east" }), 1);
    await B.stopApiserver();
    await until("east to be down", 20_000, async () => {
      const g = await parseExposition(await scrape(mport));
      return sum(g, "mca_cluster_up", { cluster: "east" }) === 0;
    });
    assert.equal(
      (await c("GET", `${ns}/configmaps`)).status,
      200,
      "merged, east left out",
    );
    assert.equal(
      (await c("GET", `${ns}/events`)).status,
      503,
      "pinned to east",
    );

    const text = await scrape(mport);
    f = await parseExposition(text);
    const req = (labels: Record<string, string>) =>
      sum(f, "mca_requests_total", labels);
    assert.equal(
      req({
        cluster: "local",
        verb: "LIST",
        resource: "pods",
        scope: "namespace",
        code: "200",
        group: "",
        version: "v1",
      }),
      3,
    );
    assert.equal(
      req({
        cluster: "local",
        verb: "GET",
        resource: "pods",
        scope: "resource",
        code: "404",
      }),
      1,
    );
    assert.equal(
      req({ cluster: "local", verb: "LIST", resource: "secrets", code: "403" }),
      1,
    );
    assert.equal(
      req({
        cluster: "local",
        verb: "GET",
        scope: "",
        code: "200",
        resource: "",
      }),
      1,
    );
    assert.equal(
      req({ cluster: "east", verb: "LIST", resource: "events", code: "200" }),
      1,
    );
    assert.equal(
      req({ cluster: "east", verb: "LIST", resource: "events", code: "503" }),
      1,
    );
    assert.equal(
      req({
        verb: "POST",
        resource: "configmaps",
        code: "201",
        scope: "resource",
      }),
      2,
    );
    assert.equal(
      req({ verb: "POST", cluster: "local" }),
      1,
      "round-robin: one create each",
    );
    assert.equal(req({ verb: "POST", cluster: "east" }), 1);
    assert.equal(
      req({
        cluster: "east+local",
        verb: "LIST",
        resource: "configmaps",
        code: "200",
      }),
      3,
    );
    assert.equal(req({ cluster: "east+local", verb: "WATCH", code: "200" }), 1);
    assert.equal(req({}), 14, "every call counted once");
    assert.equal(sum(f, "mca_requests_in_flight"), 0);
    assert.equal(sum(f, "mca_long_running_requests"), 0);
    assert.equal(
      sum(f, "mca_request_duration_seconds_count"),
      13,
      "all but the watch",
    );
    assert.equal(
      sum(f, "mca_request_duration_seconds_count", { verb: "WATCH" }),
      0,
    );
    assert.ok(
      sum(f, "mca_upstream_request_duration_seconds_count", {
        cluster: "local",
      }) >= 9,
    );
    assert.ok(
      sum(f, "mca_upstream_request_duration_seconds_count", {
        cluster: "east",
      }) >= 5,
    );
    assert.ok(sum(f, "mca_request_bytes_total", { verb: "POST" }) > 0);
    assert.ok(
      sum(f, "mca_response_bytes_total", {
        cluster: "east+local",
        verb: "LIST",
      }) > 0,
    );
    assert.equal(sum(f, "mca_upstream_errors_total", { cluster: "east" }), 1);
    assert.equal(
      sum(f, "mca_upstream_errors_total"),
      1,
      "only the pinned call",
    );
    assert.equal(
      sum(f, "mca_merged_clusters_left_out_total", { cluster: "east" }),
      1,
    );
    assert.equal(
      sum(f, "mca_merged_clusters_left_out_total", { cluster: "local" }),
      0,
    );
    assert.equal(sum(f, "mca_routing_reloads_total", { result: "loaded" }), 1);
    assert.equal(
      sum(f, "mca_routing_reloads_total", { result: "rejected" }),
      1,
    );
    assert.ok(
      f.some((x) => x.name === "mca_failovers" && x.type === "counter"),
    );
    assert.equal(f.find((x) => x.name === "mca_failovers")!.samples.length, 0);
    assert.ok(sum(f, "process_resident_memory_bytes") > 1e6);
    checkHistograms(f);
    for (
      const secret of [tokenA, tokenB, "placeholder", "metrics-e2e/1.0", "nope"]
    ) {
      assert.ok(
        !text.includes(secret),
        `no ${secret.slice(0, 12)}… in /metrics`,
      );
    }
    const om = await parseExposition(await scrape(mport, true), "openmetrics");
    checkHistograms(om);
    assert.equal(sum(om, "mca_requests_total", {}), 14);
  } catch (error) {
    console.error(logs.slice(-30).join("\n"));
    throw error;
  } finally {
    await sidecar?.close();
    await Promise.all([A.stop(), B.stop()]);
  }
  await Deno.remove(dir, { recursive: true });
});
