/**
 * The metrics endpoint: plain HTTP, `GET /metrics` only.
 *
 * Prometheus scrapes the Pod IP, so this listens on `0.0.0.0` by default;
 * it serves nothing but the registries' exposition (no request data is
 * echoed, so no header value can leak). Any other path is 404, any other
 * method 405; malformed requests are the HTTP server's to refuse (Deno's
 * hyper-based server answers 400/431 or closes), never a crash.
 *
 * @module
 */

import type { Metrics } from "./metrics.ts";

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  /** Address to listen on; `0.0.0.0` by default. */
  hostname?: string;
  /** Port; 0 picks a free one (tests). */
  port: number;
}

/** The endpoint, running. */
export interface MetricsServer {
  hostname: string;
  port: number;
  close(): Promise<void>;
}

const OPENMETRICS = "application/openmetrics-text";

/** Whether the scraper asked for OpenMetrics (Prometheus sends it first). */
export function wantsOpenMetrics(accept: string | null): boolean {
  if (!accept) return false;
  for (const part of accept.split(",")) {
    const [type, ...params] = part.split(";").map((s) => s.trim());
    if (type.toLowerCase() !== OPENMETRICS) continue;
    const q = params.find((p) => p.startsWith("q="));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}

function plain(status: number, text: string, headers = {}): Response {
  return new Response(text + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

/** Answers one request to the metrics port. */
export async function handleMetricsRequest(
  metrics: Metrics,
  req: Request,
): Promise<Response> {
  if (new URL(req.url).pathname !== "/metrics") {
    return plain(404, "not found: only /metrics is served here");
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    return plain(405, "method not allowed: use GET", { allow: "GET, HEAD" });
  }
  const registry = wantsOpenMetrics(req.headers.get("accept"))
    ? metrics.openMetrics
    : metrics.text;
  let body: string;
  try {
    body = await registry.metrics();
  } catch (error) {
    return plain(500, `collecting metrics failed: ${(error as Error).name}`);
  }
  return new Response(req.method === "HEAD" ? null : body, {
    headers: { "content-type": registry.contentType },
  });
}

/** Starts serving `metrics`; throws if the address cannot be bound. */
export function startMetricsServer(
  metrics: Metrics,
  options: MetricsServerOptions,
): Promise<MetricsServer> {
  const hostname = options.hostname ?? "0.0.0.0";
  return new Promise((resolve, reject) => {
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        hostname,
        port: options.port,
        onListen(addr) {
          resolve({
            hostname: addr.hostname,
            port: addr.port,
            close: () => server.shutdown(),
          });
        },
        onError: () => plain(500, "internal error"),
      }, (req) => handleMetricsRequest(metrics, req));
    } catch (error) {
      reject(
        new Error(
          `cannot serve metrics on ${hostname}:${options.port}: ${
            (error as Error).message
          }; pick another --metrics-port or 0 to turn metrics off`,
        ),
      );
    }
  });
}
