/**
 * A running `mca` sidecar in front of the in-repo fake upstream, for the
 * fast tier: real service-account layout (kubelet `..data` symlinks) under
 * tmp/, the sidecar started in-process on a free port, log lines captured.
 *
 * @module
 */

import { request } from "node:https";
import { connect as connectTls } from "node:tls";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { join } from "node:path";
import {
  type Sidecar,
  type SidecarOptions,
  startSidecar,
} from "../../lib/sidecar/run.ts";
import {
  DEFAULT_FAKE_TOKEN,
  type FakeUpstream,
  startFakeUpstream,
} from "./fake_upstream.ts";
import { writeProjectedVolume } from "./cluster.ts";

const TMP = new URL("../../tmp/", import.meta.url).pathname;

/** The fake upstream, the sidecar in front of it, and their directories. */
export interface Fixture {
  upstream: FakeUpstream;
  /** Phase 2: one fake upstream per remote cluster, by name. */
  remotes: Map<string, FakeUpstream>;
  /** Phase 2: the routing file (rewrite it to test reloads). */
  routingFile: string;
  sidecar: Sidecar;
  port: number;
  dir: string;
  realSaDir: string;
  appSaDir: string;
  stateDir: string;
  logs: string[];
  appCa(): string;
  /** Rotates the real token the kubelet way (`..data` swap). */
  rotate(token: string): Promise<void>;
  /** Starts a second sidecar on the same directories (a restart). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link startFixture}. */
export interface FixtureOptions {
  connectTimeoutMs?: number;
  headTimeoutMs?: number;
  /** Remote clusters to start, each a fake upstream behind a kubeconfig. */
  remotes?: string[];
  /** Routing YAML; written to a file the sidecar watches. */
  routing?: string;
  /** How often clusters are probed; 100 ms by default. */
  healthIntervalMs?: number;
  /** Consumers of call events besides the log. */
  observers?: SidecarOptions["observers"];
  /** The call policy. */
  policy?: SidecarOptions["policy"];
  /** A policy file's text, written to `<dir>/policy.yaml` (`--policy`). */
  policyYaml?: string;
}

function kubeconfigFor(name: string, upstream: FakeUpstream): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name,
      cluster: {
        server: upstream.url,
        "certificate-authority-data": btoa(upstream.caPem),
      },
    }],
    users: [{ name, user: { token: DEFAULT_FAKE_TOKEN } }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    "current-context": name,
  });
}

/** Starts the fake upstream and a sidecar in front of it. */
export async function startFixture(
  options: FixtureOptions = {},
): Promise<Fixture> {
  await Deno.mkdir(TMP, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: TMP, prefix: "sidecar-" });
  const realSaDir = join(dir, "real-sa");
  const appSaDir = join(dir, "app-sa");
  const stateDir = join(dir, "state");
  await Deno.mkdir(appSaDir);
  const upstream = await startFakeUpstream();
  const files = (token: string) => ({
    token,
    "ca.crt": upstream.caPem,
    namespace: "team-a",
  });
  await writeProjectedVolume(realSaDir, files(DEFAULT_FAKE_TOKEN));
  const remotes = new Map<string, FakeUpstream>();
  const clustersDir = join(dir, "clusters");
  const routingFile = join(dir, "routing.yaml");
  if (options.remotes) {
    await Deno.mkdir(clustersDir);
    for (const name of options.remotes) {
      const remote = await startFakeUpstream();
      remotes.set(name, remote);
      await Deno.writeTextFile(
        join(clustersDir, `${name}.kubeconfig`),
        kubeconfigFor(name, remote),
      );
    }
  }
  if (options.policyYaml !== undefined) {
    await Deno.writeTextFile(join(dir, "policy.yaml"), options.policyYaml);
  }
  if (options.routing !== undefined) {
    await Deno.writeTextFile(routingFile, options.routing);
  }
  const logs: string[] = [];
  const start = () =>
    startSidecar({
      saDir: realSaDir,
      mcaSaDir: appSaDir,
      stateDir,
      hosts: ["127.0.0.1"],
      port: 0,
      env: {
        KUBERNETES_SERVICE_HOST: "127.0.0.1",
        KUBERNETES_SERVICE_PORT: String(upstream.port),
      },
      connectTimeoutMs: options.connectTimeoutMs,
      headTimeoutMs: options.headTimeoutMs,
      clustersDir: options.remotes ? clustersDir : undefined,
      routingConfig: options.routing !== undefined ? routingFile : undefined,
      healthIntervalMs: options.healthIntervalMs ?? 100,
      reloadIntervalMs: 50,
      log: (line) => logs.push(line),
      observers: options.observers,
      policy: options.policy,
      policyFile: options.policyYaml !== undefined
        ? join(dir, "policy.yaml")
        : undefined,
    });
  let sidecar: Sidecar;
  try {
    sidecar = await start();
  } catch (error) {
    await upstream.close();
    for (const remote of remotes.values()) await remote.close();
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  const fixture: Fixture = {
    upstream,
    remotes,
    routingFile,
    sidecar,
    port: 0,
    dir,
    realSaDir,
    appSaDir,
    stateDir,
    logs,
    appCa: () => Deno.readTextFileSync(join(appSaDir, "ca.crt")),
    rotate: (token) => writeProjectedVolume(realSaDir, files(token)),
    async restart() {
      await fixture.sidecar.close();
      fixture.sidecar = await start();
      fixture.port = fixture.sidecar.proxy.port;
    },
    async close() {
      await fixture.sidecar.close();
      await upstream.close();
      for (const remote of remotes.values()) await remote.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
  fixture.port = fixture.sidecar.proxy.port;
  return fixture;
}

/** An answer as an app saw it. */
export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Uint8Array;
  text: string;
}

/** Calls the sidecar as an app would (trusting the app's `ca.crt`). */
export function appCall(
  fixture: Pick<Fixture, "port" | "appCa">,
  method: string,
  path: string,
  options: {
    headers?: OutgoingHttpHeaders;
    body?: string | Uint8Array;
    ca?: string;
  } = {},
): Promise<Answer> {
  const { promise, resolve, reject } = Promise.withResolvers<Answer>();
  const req = request({
    host: "127.0.0.1",
    port: fixture.port,
    method,
    path,
    ca: options.ca ?? fixture.appCa(),
    agent: false,
    headers: {
      authorization: "Bearer mca-placeholder-token",
      ...options.headers,
    },
  }, (res) => {
    const chunks: Uint8Array[] = [];
    res.on("data", (c: Uint8Array) => chunks.push(c));
    res.on("error", reject);
    res.on("end", () => {
      const body = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        body.set(c, at);
        at += c.length;
      }
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body,
        text: new TextDecoder().decode(body),
      });
    });
  });
  req.on("error", reject);
  req.end(options.body);
  return promise;
}

/**
 * Sends raw bytes to a TLS listener and resolves with everything it answered
 * once it closes the connection: for requests no HTTP client would send.
 */
export async function rawExchange(
  port: number,
  ca: string,
  bytes: string,
): Promise<string> {
  const socket = connectTls({
    host: "127.0.0.1",
    port,
    ca,
    servername: "localhost",
  });
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("secureConnect", resolve));
  const chunks: string[] = [];
  socket.on("data", (c) => chunks.push(String(c)));
  const closed = new Promise((resolve) => socket.once("close", resolve));
  socket.write(bytes);
  await closed;
  return chunks.join("");
}

/**
 * Sends a GET (a watch, a large read) on a raw TLS connection and never
 * reads: the client's kernel buffer fills, and what MCA cannot send waits
 * in MCA. Close the returned connection when done.
 */
export async function openUnreadCall(
  f: Fixture,
  path: string,
): Promise<Deno.TlsConn> {
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: f.port,
    caCerts: [f.appCa()],
  });
  await conn.write(new TextEncoder().encode(
    `GET ${path} HTTP/1.1\r\n` +
      "Host: kubernetes.default.svc\r\nAuthorization: Bearer x\r\n\r\n",
  ));
  return conn;
}

/**
 * Pushes 1 MiB watch events to `upstream` until it sees a client go away,
 * at most `maxMiB` of them (a bound, so a proxy that never gives up fails
 * the caller's wait instead of looping).
 */
export async function floodWatches(
  upstream: FakeUpstream,
  maxMiB = 64,
): Promise<void> {
  const pad = "x".repeat(1024 * 1024);
  for (let i = 0; i < maxMiB && upstream.abortedRequests() === 0; i++) {
    upstream.pushWatchEvent({
      type: "ADDED",
      object: {
        kind: "ConfigMap",
        metadata: { name: `c${i}`, resourceVersion: String(100 + i) },
        pad,
      },
    });
    await new Promise((r) => setImmediate(r)); // let the bytes move
  }
}
