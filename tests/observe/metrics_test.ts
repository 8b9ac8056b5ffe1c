import assert from "node:assert/strict";
import { parseRequestInfo } from "../../lib/kube/request_info.ts";
import {
  createMetrics,
  DENO_UNSUPPORTED_DEFAULTS,
  type Metrics,
  REQUEST_DURATION_BUCKETS,
} from "../../lib/observe/metrics.ts";
import type { CallDecision, CallEnd } from "../../lib/observe/observer.ts";

let id = 0;

function run(
  metrics: Metrics,
  call: {
    method: string;
    target: string;
    contentType?: string;
    upgrade?: boolean;
  },
  plan: { decision?: CallDecision; upstreams?: [string, number | string][] },
  end: Partial<CallEnd>,
): void {
  const o = metrics.observer.start({
    id: ++id,
    info: parseRequestInfo(call.method, call.target),
    method: call.method,
    startedAt: performance.now(),
    receivedAt: new Date(),
    upgrade: call.upgrade ?? false,
    userAgent: "secret-agent/1.0",
    ...(call.contentType ? { contentType: call.contentType } : {}),
  });
  if (plan.decision) o.decided?.(plan.decision);
  for (const [cluster, answer] of plan.upstreams ?? []) {
    const u = o.upstream?.({
      cluster,
      method: call.method,
      target: call.target,
      info: parseRequestInfo(call.method, call.target),
    });
    if (typeof answer === "number") {
      u?.response({ status: answer });
      u?.failed("aborted"); // a stream cut later: not an upstream error
    } else u?.failed(answer);
  }
  o.end({
    status: 200,
    bytesIn: 0,
    bytesOut: 10,
    durationMs: 12,
    cluster: "local",
    outcomes: [],
    ...end,
  });
}

type Json = Awaited<ReturnType<Metrics["text"]["getMetricsAsJSON"]>>;

function values(json: Json, name: string) {
  const m = json.find((x) => x.name === name);
  assert.ok(m, `${name} is exported`);
  return m.values as {
    labels: Record<string, string | number>;
    value: number;
    metricName?: string;
  }[];
}

function one(json: Json, name: string, labels: Record<string, string>): number {
  const hits = values(json, name).filter((v) =>
    Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x)
  );
  return hits.reduce((s, v) => s + v.value, 0);
}

const one_local = (cluster = "local"): CallDecision => ({
  plan: "one",
  clusters: [cluster],
  missing: [],
});

Deno.test("metrics: requests are counted with kube-apiserver labels and buckets", async () => {
  const metrics = createMetrics({ defaultCollectors: false });
  run(metrics, { method: "GET", target: "/api/v1/namespaces/a/pods" }, {
    decision: one_local(),
    upstreams: [["local", 200]],
  }, {});
  run(metrics, { method: "GET", target: "/api/v1/namespaces/a/pods/p" }, {
    decision: one_local(),
    upstreams: [["local", 404]],
  }, { status: 404 });
  run(
    metrics,
    {
      method: "PATCH",
      target: "/apis/apps/v1/namespaces/a/deployments/d",
      contentType: "application/apply-patch+yaml",
    },
    { decision: one_local("east"), upstreams: [["east", 200]] },
    {
      cluster: "east",
      bytesIn: 300,
    },
  );
  const json = await metrics.text.getMetricsAsJSON();
  assert.equal(
    one(json, "mca_requests_total", {
      verb: "LIST",
      scope: "namespace",
      resource: "pods",
      code: "200",
      cluster: "local",
      group: "",
      version: "v1",
    }),
    1,
  );
  assert.equal(
    one(json, "mca_requests_total", {
      verb: "GET",
      scope: "resource",
      code: "404",
    }),
    1,
  );
  assert.equal(
    one(json, "mca_requests_total", {
      verb: "APPLY",
      cluster: "east",
      group: "apps",
      resource: "deployments",
    }),
    1,
  );
  assert.equal(
    one(json, "mca_request_bytes_total", { cluster: "east", verb: "APPLY" }),
    300,
  );
  assert.equal(
    one(json, "mca_response_bytes_total", { cluster: "local", verb: "LIST" }),
    10,
  );
  const buckets = values(json, "mca_request_duration_seconds")
    .filter((v) =>
      v.metricName === "mca_request_duration_seconds_bucket" &&
      v.labels.verb === "LIST"
    )
    .map((v) => v.labels.le);
  assert.deepEqual(buckets, [...REQUEST_DURATION_BUCKETS, "+Inf"]);
  assert.equal(
    one(json, "mca_upstream_request_duration_seconds", {
      cluster: "east",
      le: "+Inf",
    }),
    1,
  );
  assert.equal(one(json, "mca_requests_in_flight", {}), 0);
  const text = await metrics.text.metrics();
  assert.ok(!text.includes("secret-agent"), "no user agent in any label");
  assert.ok(!text.includes('name="'), "no object name label");
  assert.ok(!text.includes('namespace="a"'), "no namespace value");
});

Deno.test("metrics: watches and upgrades are long-running and kept out of the latency histogram", async () => {
  const metrics = createMetrics({ defaultCollectors: false });
  const o = metrics.observer.start({
    id: ++id,
    info: parseRequestInfo("GET", "/api/v1/pods?watch=1"),
    method: "GET",
    startedAt: performance.now(),
    receivedAt: new Date(),
    upgrade: false,
  });
  o.decided?.({
    plan: "fanout",
    clusters: ["local", "east"],
    missing: ["west"],
  });
  let json = await metrics.text.getMetricsAsJSON();
  assert.equal(
    one(json, "mca_long_running_requests", {
      cluster: "east+local+west",
      verb: "WATCH",
    }),
    1,
  );
  assert.equal(one(json, "mca_requests_in_flight", {}), 1);
  assert.equal(
    one(json, "mca_merged_clusters_left_out_total", { cluster: "west" }),
    1,
  );
  o.end({
    status: 200,
    bytesIn: 0,
    bytesOut: 5,
    durationMs: 60_000,
    cluster: "local+east",
    outcomes: [],
  });
  run(metrics, {
    method: "POST",
    target: "/api/v1/namespaces/a/pods/p/exec",
    upgrade: true,
  }, {
    decision: one_local(),
    upstreams: [["local", 101]],
  }, { status: 101 });
  json = await metrics.text.getMetricsAsJSON();
  assert.equal(one(json, "mca_long_running_requests", { verb: "WATCH" }), 0);
  assert.equal(
    one(json, "mca_requests_total", {
      verb: "WATCH",
      cluster: "east+local+west",
    }),
    1,
  );
  assert.equal(
    one(json, "mca_requests_total", { verb: "CONNECT", code: "101" }),
    1,
  );
  assert.equal(one(json, "mca_request_duration_seconds", { verb: "WATCH" }), 0);
  assert.equal(
    one(json, "mca_request_duration_seconds", { verb: "CONNECT" }),
    0,
  );
});

Deno.test("metrics: failovers, upstream errors, reloads and cluster health", async () => {
  const healthy = new Map([["local", true], ["east", false]]);
  const metrics = createMetrics({
    defaultCollectors: false,
    health: () => ({
      names: () => healthy.keys(),
      isHealthy: (n) => healthy.get(n) ?? false,
    }),
  });
  run(metrics, { method: "GET", target: "/api/v1/namespaces/a/configmaps/c" }, {
    decision: { plan: "one", clusters: ["east", "local"], missing: [] },
    upstreams: [["east", "unreachable"], ["local", 200]],
  }, {});
  metrics.reloaded("loaded");
  metrics.reloaded("rejected");
  metrics.reloaded("rejected");
  const json = await metrics.text.getMetricsAsJSON();
  assert.equal(one(json, "mca_failovers_total", { cluster: "local" }), 1);
  assert.equal(
    one(json, "mca_upstream_errors_total", {
      cluster: "east",
      reason: "unreachable",
    }),
    1,
  );
  assert.equal(one(json, "mca_upstream_errors_total", {}), 1);
  assert.equal(
    one(json, "mca_routing_reloads_total", { result: "rejected" }),
    2,
  );
  assert.equal(one(json, "mca_cluster_up", { cluster: "local" }), 1);
  assert.equal(one(json, "mca_cluster_up", { cluster: "east" }), 0);
  healthy.set("east", true);
  const again = await metrics.text.getMetricsAsJSON();
  assert.equal(one(again, "mca_cluster_up", { cluster: "east" }), 1);
});

Deno.test("metrics: invented resources and groups do not grow the label set", async () => {
  const metrics = createMetrics({ defaultCollectors: false });
  for (let i = 0; i < 50; i++) {
    run(metrics, { method: "GET", target: `/apis/evil${i}.io/v1/thing${i}` }, {
      decision: one_local(),
      upstreams: [["local", 404]],
    }, { status: 404 });
  }
  const json = await metrics.text.getMetricsAsJSON();
  const series = values(json, "mca_requests_total");
  assert.equal(series.length, 1);
  assert.equal(series[0].labels.resource, "other");
  assert.equal(series[0].labels.group, "other");
});

Deno.test("metrics: only the default collectors that work under Deno are exported", async () => {
  const metrics = createMetrics();
  const text = await metrics.text.metrics();
  for (
    const name of [
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "nodejs_eventloop_lag_seconds",
      "nodejs_heap_size_used_bytes",
    ]
  ) {
    assert.match(text, new RegExp(`^${name} [0-9.e+-]+$`, "m"), name);
  }
  const rss = Number(text.match(/^process_resident_memory_bytes (\S+)$/m)![1]);
  assert.ok(rss > 1e6, `resident memory is real (${rss})`);
  for (const name of DENO_UNSUPPORTED_DEFAULTS) {
    assert.ok(!text.includes(`# TYPE ${name} `), `${name} left out`);
  }
  const open = await metrics.openMetrics.metrics();
  assert.match(open, /# EOF\s*$/);
  // the same collectors, shared: one event-loop monitor, not one per format
  for (
    const name of [
      "process_resident_memory_bytes",
      "nodejs_heap_size_used_bytes",
    ]
  ) {
    assert.match(open, new RegExp(`^${name} [0-9.e+-]+$`, "m"), name);
    assert.strictEqual(
      metrics.openMetrics.getSingleMetric(name),
      metrics.text.getSingleMetric(name),
    );
  }
  for (const name of DENO_UNSUPPORTED_DEFAULTS) {
    assert.ok(!open.includes(`# TYPE ${name} `), `${name} left out`);
  }
});

Deno.test("metrics: names held by two clusters of a spread set are counted by resource", async () => {
  const metrics = createMetrics({ defaultCollectors: false });
  const o = metrics.observer.start({
    id: ++id,
    info: parseRequestInfo("GET", "/api/v1/namespaces/a/configmaps"),
    method: "GET",
    startedAt: performance.now(),
    receivedAt: new Date(),
    upgrade: false,
  });
  o.decided?.({ plan: "fanout", clusters: ["local", "east"], missing: [] });
  o.end({
    status: 200,
    bytesIn: 0,
    bytesOut: 5,
    durationMs: 3,
    cluster: "east+local",
    outcomes: [],
    collisions: 2,
  });
  const json = await metrics.text.getMetricsAsJSON();
  assert.equal(
    one(json, "mca_name_collisions_total", { resource: "configmaps" }),
    2,
  );
});

Deno.test("metrics: policy verdicts are counted per cluster by decision, mode, rule and basis", async () => {
  const metrics = createMetrics({ defaultCollectors: false });
  const deny = (basis: "rule" | "isolation" | "default", rule?: string) => ({
    allowed: false,
    mode: "enforce" as "enforce" | "audit",
    basis,
    reason: "why",
    ...(rule ? { rule } : {}),
  });
  run(metrics, { method: "GET", target: "/api/v1/secrets" }, {
    decision: {
      plan: "refused",
      clusters: [],
      missing: [],
      policy: { local: deny("isolation"), east: deny("isolation") },
    },
  }, { status: 403 });
  run(metrics, { method: "LIST", target: "/api/v1/namespaces/a/secrets" }, {
    decision: {
      plan: "fanout",
      clusters: ["local"],
      missing: ["east"],
      policy: {
        local: { ...deny("default"), allowed: true, mode: "audit" },
        east: deny("rule", "no-secrets"),
      },
    },
    upstreams: [["local", 200]],
  }, {});
  const json = await metrics.text.getMetricsAsJSON();
  const name = "mca_policy_decisions_total";
  assert.equal(one(json, name, { decision: "deny", basis: "isolation" }), 2);
  assert.equal(
    one(json, name, {
      cluster: "east",
      decision: "deny",
      mode: "enforce",
      rule: "no-secrets",
      basis: "rule",
    }),
    1,
  );
  assert.equal(
    one(json, name, {
      cluster: "local",
      decision: "allow",
      mode: "audit",
      rule: "",
      basis: "default",
    }),
    1,
  );
  assert.equal(one(json, name, {}), 4);
  // no policy, no samples
  const plain = createMetrics({ defaultCollectors: false });
  run(plain, { method: "GET", target: "/api/v1/namespaces/a/pods" }, {
    decision: one_local(),
    upstreams: [["local", 200]],
  }, {});
  assert.equal(
    values(await plain.text.getMetricsAsJSON(), name).length,
    0,
  );
});

Deno.test("metrics: the audit log's counters are exported when audit is on", async () => {
  const counts = { written: 7, dropped: 2, errors: 3 };
  const metrics = createMetrics({
    defaultCollectors: false,
    audit: () => counts,
  });
  let json = await metrics.text.getMetricsAsJSON();
  assert.equal(one(json, "mca_audit_events_total", { result: "written" }), 7);
  assert.equal(one(json, "mca_audit_events_total", { result: "dropped" }), 2);
  assert.equal(one(json, "mca_audit_errors_total", {}), 3);
  counts.dropped = 5;
  json = await metrics.text.getMetricsAsJSON();
  assert.equal(one(json, "mca_audit_events_total", { result: "dropped" }), 5);
  const off = createMetrics({
    defaultCollectors: false,
    audit: () => undefined,
  });
  const text = await off.text.metrics();
  assert.doesNotMatch(text, /^mca_audit_events_total\{/m);
});
