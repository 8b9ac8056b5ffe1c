/**
 * Finding the real API server and the credentials to call it with.
 *
 * In a Pod, `mca` sees the kubelet's `KUBERNETES_SERVICE_HOST/PORT` (the
 * injector leaves its env alone) and the real service-account directory, and
 * finds the API server by the rules of `@kubernetes/client-node`'s in-cluster
 * loader (a test holds the two to the same answers). The library itself is
 * loaded only for kubeconfigs: importing it costs ~70 MB of memory and ~0.3 s
 * of start-up, paid by every Pod otherwise. On a laptop there is no service
 * account: `mca` then uses a kubeconfig context (token, client certificate or
 * exec plugin) through that library.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import type { Agent, AgentOptions } from "node:https";
import { existsSync } from "node:fs";
import { isIPv6 } from "node:net";
import { join } from "node:path";
import type { Cluster, KubeConfig } from "@kubernetes/client-node";
import { type FetchClients, fetchClients } from "./fetch_clients.ts";
import { pooledAgent } from "./pool.ts";
import type { StreamClients } from "./stream_clients.ts";
import { RealServiceAccount } from "../sidecar/service_account.ts";

/** Credentials for one upstream call. */
export interface UpstreamAuth {
  /** The `Authorization` header value, if the upstream wants one. */
  authorization?: string;
  /** Keep-alive agent carrying the TLS settings (CA, client certificate). */
  agent: Agent;
  /** TLS options for a dedicated connection (upgrades do not use the agent). */
  tls: AgentOptions;
  /**
   * A `fetch` client with the same trust and client certificate (HTTP/1.1
   * only), for answers that may be large: unlike the `node:https` client it
   * stops reading when MCA cannot pass bytes on. Absent where fetch cannot
   * express the TLS settings (skip-verify, a TLS server name).
   */
  client?: Deno.HttpClient;
  /**
   * Clients for watches, HTTP/2 where the server offers it (many watches
   * share one connection); absent where `client` is.
   */
  streams?: StreamClients;
}

/** A discovered API server. */
export interface Upstream {
  /** Base URL, e.g. `https://10.96.0.1:443`. */
  url: URL;
  /** How it was found, for the start-up log line (never a secret). */
  source: string;
  /** The namespace apps should see in their `namespace` file. */
  namespace: string;
  /** Fresh credentials; re-reads rotated tokens and CAs. */
  auth(): Promise<UpstreamAuth>;
  /** Closes idle upstream connections. */
  close(): void;
}

/** Where to look for the upstream. */
export interface UpstreamOptions {
  /** The real service-account directory. */
  saDir: string;
  /** A kubeconfig path; wins over in-cluster discovery when set. */
  kubeconfig?: string;
  /** Kubeconfig context; the current context when not set. */
  context?: string;
  /** Environment to read `KUBERNETES_SERVICE_*` and `KUBECONFIG` from. */
  env?: Record<string, string | undefined>;
}

const AGENT_OPTIONS: AgentOptions = {
  keepAlive: true,
  maxFreeSockets: 64,
  scheduling: "lifo",
};

/**
 * Finds the upstream: in-cluster when the service-account token and the
 * kubelet's env are present (and no kubeconfig was asked for), otherwise a
 * kubeconfig from `--kubeconfig`, `KUBECONFIG` or `~/.kube/config`.
 */
export async function discoverUpstream(
  options: UpstreamOptions,
): Promise<Upstream> {
  const env = options.env ?? Deno.env.toObject();
  const inCluster = env.KUBERNETES_SERVICE_HOST &&
    env.KUBERNETES_SERVICE_PORT && existsSync(join(options.saDir, "token"));
  if (!options.kubeconfig && inCluster) return inClusterUpstream(options, env);
  const path = options.kubeconfig ?? firstKubeconfig(env);
  if (!path) {
    throw new Error(
      `no upstream API server found: no service-account token in ${options.saDir} ` +
        `with KUBERNETES_SERVICE_HOST/PORT set (in a Pod), and no kubeconfig ` +
        `(--kubeconfig, KUBECONFIG or ~/.kube/config) for local use`,
    );
  }
  return await kubeconfigUpstream(path, options.context);
}

/** Loads client-node on first use (see the module note). */
async function newKubeConfig(): Promise<KubeConfig> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  return new KubeConfig();
}

/**
 * The API server URL from the kubelet's env, by client-node's in-cluster
 * rules: plain http on ports 80, 8080 and 8001, brackets around IPv6.
 */
export function inClusterServer(
  env: Record<string, string | undefined>,
): string {
  const host = env.KUBERNETES_SERVICE_HOST ?? "";
  const port = env.KUBERNETES_SERVICE_PORT ?? "";
  const scheme = ["80", "8080", "8001"].includes(port) ? "http" : "https";
  return `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
}

function firstKubeconfig(env: Record<string, string | undefined>) {
  const candidates = [
    ...(env.KUBECONFIG ?? "").split(":").filter((p) => p !== ""),
    env.HOME ? join(env.HOME, ".kube", "config") : "",
  ];
  return candidates.find((p) => p !== "" && existsSync(p));
}

/**
 * A `ca.crt` that holds no certificate would make every call fail later
 * with a TLS error: say so at start, naming the file.
 */
function checkCa(pem: string, path: string): void {
  if (pem.trim() === "") return; // absent: the system trust store applies
  try {
    new X509Certificate(pem);
  } catch {
    throw new Error(
      `${path} holds no valid PEM certificate; mount the cluster's CA bundle there (the kube-root-ca.crt ConfigMap)`,
    );
  }
}

function inClusterUpstream(
  options: UpstreamOptions,
  env: Record<string, string | undefined>,
): Upstream {
  const server = inClusterServer(env);
  const sa = new RealServiceAccount(options.saDir);
  let caPem = sa.current().caPem;
  checkCa(caPem, join(options.saDir, "ca.crt"));
  let tls: AgentOptions = { ...AGENT_OPTIONS, ca: caPem || undefined };
  let agent = pooledAgent(tls);
  let fetching = fetchClients(tls);
  return {
    url: new URL(server),
    source: `in-cluster (${server}, service account in ${options.saDir})`,
    namespace: sa.namespace(),
    auth() {
      const files = sa.current();
      if (files.caPem !== caPem) {
        // The cluster CA rotated: new connections must trust the new one.
        caPem = files.caPem;
        agent.destroy();
        fetching?.close();
        tls = { ...AGENT_OPTIONS, ca: caPem || undefined };
        agent = pooledAgent(tls);
        fetching = fetchClients(tls);
      }
      return Promise.resolve({
        authorization: `Bearer ${files.token}`,
        agent,
        tls,
        client: fetching?.client,
        streams: fetching?.streams,
      });
    },
    close() {
      agent.destroy();
      fetching?.close();
    },
  };
}

/**
 * The context names of a kubeconfig file (Phase 2: each context is a
 * cluster MCA can route to). Throws with the path if the file is unusable.
 */
export async function kubeconfigContexts(path: string): Promise<string[]> {
  const kc = await loadKubeconfig(path);
  return kc.getContexts().map((c) => c.name);
}

/** Loads a kubeconfig file; throws with the path if it is unusable. */
async function loadKubeconfig(path: string): Promise<KubeConfig> {
  const kc = await newKubeConfig();
  try {
    kc.loadFromFile(path);
  } catch (error) {
    throw new Error(
      `cannot load kubeconfig ${path}: ${(error as Error).message}`,
    );
  }
  return kc;
}

/** How long a kubeconfig-derived Authorization header is reused. */
const AUTH_CACHE_MS = 10_000;

/**
 * Switches `kc` to `context` (when given) and returns its cluster; throws
 * naming the file and what to add when the context or cluster is missing.
 */
function currentCluster(
  kc: KubeConfig,
  where: { path: string; context?: string },
): Cluster {
  const { path, context } = where;
  if (context) {
    if (!kc.getContextObject(context)) {
      throw new Error(`kubeconfig ${path} has no context ${context}`);
    }
    kc.setCurrentContext(context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    const name = kc.getCurrentContext();
    const wanted = kc.getContextObject(name)?.cluster;
    throw new Error(
      name
        ? `kubeconfig ${path}: context ${name} names cluster ${
          wanted ?? "(none)"
        }, which the file does not define; add it under clusters`
        : `kubeconfig ${path} has no current context; set current-context or pass --context`,
    );
  }
  return cluster;
}

async function kubeconfigUpstream(
  path: string,
  context?: string,
): Promise<Upstream> {
  const kc = await loadKubeconfig(path);
  const cluster = currentCluster(kc, { path, context });
  let agent: Agent | undefined;
  let fetching: FetchClients | undefined;
  let tls: AgentOptions = {};
  let cached: { value?: string; until: number } = { until: 0 };
  return {
    url: new URL(cluster.server),
    source:
      `kubeconfig ${path} (context ${kc.getCurrentContext()}, ${cluster.server})`,
    namespace: kc.getContextObject(kc.getCurrentContext())?.namespace ??
      "default",
    async auth() {
      if (agent === undefined || Date.now() >= cached.until) {
        const opts: { headers: Record<string, string> } & AgentOptions = {
          headers: {},
        };
        await kc.applyToHTTPSOptions(opts);
        if (agent === undefined) {
          tls = {
            ...AGENT_OPTIONS,
            ca: opts.ca,
            cert: opts.cert,
            key: opts.key,
            rejectUnauthorized: opts.rejectUnauthorized,
            servername: opts.servername,
          };
          agent = pooledAgent(tls);
          fetching = fetchClients(tls);
        }
        cached = {
          value: opts.headers.Authorization ?? opts.headers.authorization,
          until: Date.now() + AUTH_CACHE_MS,
        };
      }
      return {
        authorization: cached.value,
        agent,
        tls,
        client: fetching?.client,
        streams: fetching?.streams,
      };
    },
    close() {
      agent?.destroy();
      fetching?.close();
    },
  };
}
