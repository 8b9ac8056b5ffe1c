/**
 * Phase 3 real tier: MCA's traces and kube-apiserver's traces in one real
 * OTLP receiver (the OpenTelemetry Collector's own otlpreceiver, see
 * tests/support/otlp_sink.ts).
 *
 * Two real control planes (A = `local`, B = `east`), both started with a
 * `TracingConfiguration` that sends every span (1 000 000 per million) to the
 * receiver's OTLP/gRPC port. The sidecar runs in-process (as in the metrics
 * tier) and exports to the receiver, once per protocol it accepts
 * (`http/protobuf`, the default, and `http/json` on its OTLP/HTTP port;
 * `grpc` on its OTLP/gRPC port): the receiver decodes each body itself and
 * refuses what it cannot decode.
 *
 * A is reached with the app's ServiceAccount token, B through a kubeconfig
 * whose user is in `system:masters`. That difference is the point: kube-
 * apiserver continues a caller's trace only for `system:masters` and
 * `system:monitoring` (`WithPublicEndpointFn(notSystemPrivilegedGroup)` in
 * k8s.io/apiserver's tracing filter); for anyone else it starts a new trace
 * whose root span LINKS the caller's span. Both shapes are asserted.
 */

import assert from "node:assert/strict";
import { request } from "node:https";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Sidecar, startSidecar } from "../../lib/sidecar/run.ts";
import { randomId } from "../../lib/observe/trace_context.ts";
import {
  type Cluster,
  startCluster,
  writeProjectedVolume,
} from "../support/cluster.ts";
import {
  type OtlpSink,
  type ReceivedSpan,
  startOtlpSink,
} from "../support/otlp_sink.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const NS = "mca-e2e";
const SERVER = 2;
const CLIENT = 3;
const ROUTING = `default: local
rules:
  - name: merged
    match: {resources: [configmaps]}
    clusters: [local, east]
    strategy: round-robin
`;

/** B behind a kubeconfig whose user is B's admin (group system:masters). */
async function adminKubeconfig(cluster: Cluster): Promise<string> {
  const admin = JSON.parse(await Deno.readTextFile(cluster.adminKubeconfig));
  const caPem = await Deno.readTextFile(cluster.caFile);
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
    users: [{ name: "east", user: { token: admin.users[0].user.token } }],
    contexts: [{ name: "east", context: { cluster: "east", user: "east" } }],
    "current-context": "east",
  });
}

function tracingConfig(sink: OtlpSink): string {
  return [
    "apiVersion: apiserver.config.k8s.io/v1",
    "kind: TracingConfiguration",
    `endpoint: ${sink.grpcEndpoint}`,
    "samplingRatePerMillion: 1000000",
    "",
  ].join("\n");
}

/** A GET from the app, with its own trace context. */
function appGet(
  sidecar: Sidecar,
  options: { ca: string; path: string; traceparent: string },
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port: sidecar.proxy.port,
      path: options.path,
      ca: options.ca,
      agent: false,
      headers: {
        authorization: "Bearer placeholder",
        traceparent: options.traceparent,
        tracestate: "app=e2e",
      },
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => text += c);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** The app's trace: a new trace id and the app's own span id. */
function appTrace() {
  const traceId = randomId(16);
  const spanId = randomId(8);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

/** MCA's server span of `traceId` and its client spans (one per cluster). */
function mcaSpans(all: ReceivedSpan[], traceId: string, clients: number) {
  const mine = all.filter((s) => s.service === "mca" && s.traceId === traceId);
  const server = mine.find((s) => s.kind === SERVER);
  const client = mine.filter((s) => s.kind === CLIENT);
  if (!server || client.length < clients) return undefined;
  return { server, client };
}

/** kube-apiserver's server span answering MCA's client span `client`. */
function apiserverSpanOf(all: ReceivedSpan[], client: ReceivedSpan) {
  return all.find((s) =>
    s.service === "apiserver" && s.kind === SERVER &&
    (s.parentSpanId === client.spanId ||
      s.links.some((l) => l.spanId === client.spanId))
  );
}

/** A's span: a new trace, linked to MCA's client span (an SA token is "public"). */
function assertLinked(api: ReceivedSpan, client: ReceivedSpan): void {
  assert.notEqual(api.traceId, client.traceId, "a new trace");
  assert.equal(api.parentSpanId, "", "a root span");
  assert.deepEqual(api.links, [{
    traceId: client.traceId,
    spanId: client.spanId,
  }]);
}

/** B's span: the same trace, child of MCA's client span (system:masters). */
function assertParented(api: ReceivedSpan, client: ReceivedSpan): void {
  assert.equal(api.traceId, client.traceId, "the app's trace");
  assert.equal(api.parentSpanId, client.spanId);
  assert.deepEqual(api.links, []);
}

interface Setup {
  dir: string;
  A: Cluster;
  sink: OtlpSink;
  saDir: string;
  clustersDir: string;
  routing: string;
  logs: string[];
}

/** One sidecar exporting with `protocol`; its calls and their spans. */
async function traceThroughSidecar(setup: Setup, protocol: string) {
  const { A, sink, logs } = setup;
  const appDir = join(setup.dir, `app-${protocol.replace("/", "-")}`);
  const sidecar = await startSidecar({
    saDir: setup.saDir,
    mcaSaDir: appDir,
    stateDir: join(setup.dir, "state"),
    hosts: ["127.0.0.1"],
    port: 0,
    env: {
      ...A.serviceEnv(),
      // gRPC: the receiver's 4317-style port, as kube-apiserver uses
      OTEL_EXPORTER_OTLP_ENDPOINT: protocol === "grpc"
        ? `http://${sink.grpcEndpoint}`
        : sink.httpUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      OTEL_SERVICE_NAME: "mca",
    },
    clustersDir: setup.clustersDir,
    routingConfig: setup.routing,
    healthIntervalMs: 500,
    log: (l) => logs.push(l),
  });
  try {
    const ready = logs.findLast((l) => l.includes('"msg":"ready"'));
    assert.equal(JSON.parse(ready!).tracing, "on", "ready line: tracing on");
    const ca = await Deno.readTextFile(join(appDir, "ca.crt"));

    // A LIST pinned to A (the app's ServiceAccount token).
    const one = appTrace();
    const pods = await appGet(sidecar, {
      ca,
      path: `/api/v1/namespaces/${NS}/pods`,
      traceparent: one.traceparent,
    });
    assert.equal(pods.status, 200, pods.text);
    const single = await sink.waitFor(
      `MCA's and A's spans of the pods LIST (${protocol})`,
      (all) => {
        const m = mcaSpans(all, one.traceId, 1);
        const api = m && apiserverSpanOf(all, m.client[0]);
        return api && m ? { ...m, api } : undefined;
      },
    );
    const { server, client: [client], api } = single;
    assert.equal(server.parentSpanId, one.spanId, "child of the app's span");
    assert.equal(client.parentSpanId, server.spanId);
    for (
      const [k, v] of Object.entries({
        "k8s.verb": "list",
        "k8s.resource": "pods",
        "k8s.namespace.name": NS,
        "mca.cluster": "local",
        "http.request.method": "GET",
        "http.response.status_code": 200,
      })
    ) assert.equal(server.attributes[k], v, `server span ${k}`);
    assert.equal(client.attributes["mca.cluster"], "local");
    assert.equal(client.attributes["http.response.status_code"], 200);
    assertLinked(api, client);
    assert.equal(api.name, "GET /api/v1/namespaces/{:namespace}/pods");
    assert.match(String(api.attributes["audit-id"]), /^[0-9a-f-]{36}$/);
    for (const s of [server, client]) {
      assert.equal(
        s.attributes["k8s.audit_id"],
        api.attributes["audit-id"],
        `MCA's ${
          s.kind === SERVER ? "server" : "client"
        } span names A's Audit-Id`,
      );
    }
    const logged = logs.map((l) => JSON.parse(l)).find((l) =>
      l.msg === "api call" && l.traceId === one.traceId
    );
    assert.ok(logged, "the api call log line carries the app's trace id");

    // A merged LIST: one client span per cluster, each answered by its API server.
    const two = appTrace();
    const cms = await appGet(sidecar, {
      ca,
      path: `/api/v1/namespaces/${NS}/configmaps`,
      traceparent: two.traceparent,
    });
    assert.equal(cms.status, 200, cms.text);
    const merged = await sink.waitFor(
      `MCA's, A's and B's spans of the merged LIST (${protocol})`,
      (all) => {
        const m = mcaSpans(all, two.traceId, 2);
        if (!m) return undefined;
        const by = (c: string) =>
          m.client.find((s) => s.attributes["mca.cluster"] === c);
        const local = by("local"), east = by("east");
        const apiA = local && apiserverSpanOf(all, local);
        const apiB = east && apiserverSpanOf(all, east);
        return apiA && apiB ? { ...m, local, east, apiA, apiB } : undefined;
      },
    );
    assert.equal(merged.client.length, 2, "one client span per cluster");
    for (const c of merged.client) {
      assert.equal(c.parentSpanId, merged.server.spanId);
    }
    assert.equal(merged.server.attributes["mca.rule"], "merged");
    assert.deepEqual(
      String(merged.server.attributes["mca.cluster"]).split("+").sort(),
      ["east", "local"],
    );
    assertLinked(merged.apiA, merged.local!);
    assertParented(merged.apiB, merged.east!);
    for (const api of [merged.apiA, merged.apiB]) {
      assert.equal(api.name, "GET /api/v1/namespaces/{:namespace}/configmaps");
    }
    for (
      const [c, api] of [[merged.local!, merged.apiA], [
        merged.east!,
        merged.apiB,
      ]]
    ) {
      assert.equal(c.attributes["k8s.audit_id"], api.attributes["audit-id"]);
    }
  } finally {
    await sidecar.close();
  }
}

Deno.test("tracing e2e: MCA's spans and kube-apiserver's in one real OTLP receiver, per protocol", async () => {
  const dir = await Deno.makeTempDir({
    dir: join(ROOT, "tmp"),
    prefix: "tracing-e2e-",
  });
  const sink = await startOtlpSink({ dir: join(dir, "otlp") });
  const logs: string[] = [];
  let clusters: Cluster[] = [];
  try {
    const config = join(dir, "tracing.yaml");
    await Deno.writeTextFile(config, tracingConfig(sink));
    const apiserverArgs = [`--tracing-config-file=${config}`];
    const started = await Promise.allSettled(
      ["a", "b"].map((n) => startCluster({ dir: join(dir, n), apiserverArgs })),
    );
    clusters = started.flatMap((s) =>
      s.status === "fulfilled" ? [s.value] : []
    );
    for (const s of started) if (s.status === "rejected") throw s.reason;
    const [A, B] = clusters;
    const saDir = join(dir, "sa");
    const tokenA = await A.writeServiceAccountDir(saDir);
    const clustersDir = join(dir, "clusters");
    const eastConfig = await adminKubeconfig(B);
    await writeProjectedVolume(clustersDir, { "east.kubeconfig": eastConfig });
    const routingDir = join(dir, "routing");
    await writeProjectedVolume(routingDir, { "routing.yaml": ROUTING });
    const setup: Setup = {
      dir,
      A,
      sink,
      saDir,
      clustersDir,
      routing: join(routingDir, "routing.yaml"),
      logs,
    };
    for (const protocol of ["http/protobuf", "http/json", "grpc"]) {
      await traceThroughSidecar(setup, protocol);
    }
    const received = await Deno.readTextFile(sink.file);
    const adminToken = JSON.parse(eastConfig).users[0].user.token;
    for (const secret of [tokenA, adminToken, "placeholder"]) {
      assert.ok(!received.includes(secret), "no token in any span");
    }
  } catch (error) {
    console.error(logs.slice(-30).join("\n"));
    throw error;
  } finally {
    await Promise.all(clusters.map((c) => c.stop()));
    await sink.stop();
  }
  await Deno.remove(dir, { recursive: true });
});
