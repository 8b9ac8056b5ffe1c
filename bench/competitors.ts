/**
 * What a user would run instead of mca: `kubectl proxy` (plain HTTP on its
 * client side, TLS upstream) and nginx as a TLS-terminating reverse proxy
 * that sets the Authorization header.
 *
 * @module
 */

import { join } from "node:path";
import { childPids, freePort, type Proc, spawn, waitForPort } from "./procs.ts";

/** An upstream API server as the proxies see it. */
export interface UpstreamSpec {
  host: string;
  port: number;
  /** PEM of the CA that signed its serving certificate. */
  caPem: string;
  /** Bearer token it accepts. */
  token: string;
  /** A name in its serving certificate (nginx verifies by name). */
  tlsName: string;
}

/** A running proxy process. */
export interface Competitor {
  proc: Proc;
  port: number;
  /** Pids whose CPU/RSS count (nginx: master + workers). */
  pids(): number[];
  stop(): Promise<void>;
}

/** `kubectl proxy` with a kubeconfig holding the token. */
export async function startKubectlProxy(
  kubectl: string,
  up: UpstreamSpec,
  dir: string,
  name: string,
): Promise<Competitor> {
  await Deno.mkdir(join(dir, name), { recursive: true });
  const caFile = join(dir, name, "ca.crt");
  await Deno.writeTextFile(caFile, up.caPem);
  const kubeconfig = join(dir, name, "kubeconfig");
  await Deno.writeTextFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: "bench",
        cluster: {
          server: `https://${up.host}:${up.port}`,
          "certificate-authority": caFile,
        },
      }],
      users: [{ name: "bench", user: { token: up.token } }],
      contexts: [{
        name: "bench",
        context: { cluster: "bench", user: "bench" },
      }],
      "current-context": "bench",
    }),
  );
  const proc = spawn(name, kubectl, {
    args: [
      "--kubeconfig",
      kubeconfig,
      `--cache-dir=${join(dir, name, "cache")}`,
      "proxy",
      "--address=127.0.0.1",
      "--port=0",
    ],
    env: { HOME: join(dir, name) },
    logBase: join(dir, name),
  });
  const line = await proc.waitForLine(
    (l) => l.includes("Starting to serve on"),
    15_000,
  );
  const port = Number(line.trim().split(":").pop());
  return {
    proc,
    port,
    pids: () => [proc.pid],
    stop: () => proc.stop(),
  };
}

/**
 * nginx (one worker, like a single-threaded sidecar) terminating TLS,
 * re-encrypting to the upstream over a keep-alive pool, replacing
 * Authorization, unbuffered (watches must stream) with a 64 KiB relay buffer
 * (the 4 KiB default halves its LIST throughput), with an access log line
 * per request like mca's call log.
 */
export async function startNginx(
  up: UpstreamSpec,
  cert: { certPem: string; keyPem: string },
  dir: string,
  name: string,
): Promise<Competitor> {
  const base = join(dir, name);
  await Deno.mkdir(join(base, "temp"), { recursive: true });
  await Deno.writeTextFile(join(base, "server.crt"), cert.certPem);
  await Deno.writeTextFile(join(base, "server.key"), cert.keyPem, {
    mode: 0o600,
  });
  await Deno.writeTextFile(join(base, "upstream-ca.crt"), up.caPem);
  const port = freePort();
  const conf = `
worker_processes 1;
pid ${base}/nginx.pid;
error_log ${base}/error.log warn;
events { worker_connections 8192; }
http {
  access_log ${base}/access.log;
  client_body_temp_path ${base}/temp/body;
  proxy_temp_path ${base}/temp/proxy;
  fastcgi_temp_path ${base}/temp/fastcgi;
  uwsgi_temp_path ${base}/temp/uwsgi;
  scgi_temp_path ${base}/temp/scgi;
  upstream api {
    server ${up.host}:${up.port};
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${base}/server.crt;
    ssl_certificate_key ${base}/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000;
    keepalive_timeout 90s;
    location / {
      proxy_pass https://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host ${up.host}:${up.port};
      proxy_set_header Authorization "Bearer ${up.token}";
      proxy_ssl_protocols TLSv1.2 TLSv1.3;
      proxy_ssl_trusted_certificate ${base}/upstream-ca.crt;
      proxy_ssl_verify on;
      proxy_ssl_name ${up.tlsName};
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
      proxy_buffering off;
      proxy_buffer_size 64k;
      proxy_buffers 8 64k;
      proxy_busy_buffers_size 128k;
      proxy_read_timeout 3600s;
    }
  }
}
`;
  const confFile = join(base, "nginx.conf");
  await Deno.writeTextFile(confFile, conf);
  const proc = spawn(name, "nginx", {
    args: [
      "-p",
      base,
      "-c",
      confFile,
      "-e",
      join(base, "error.log"),
      "-g",
      "daemon off;",
    ],
    logBase: base,
  });
  try {
    await Promise.race([
      waitForPort("127.0.0.1", port, 10_000, name),
      proc.exited.then((code) => {
        throw new Error(
          `${name} exited with code ${code}; see ${base}.err and ${base}/error.log`,
        );
      }),
    ]);
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return {
    proc,
    port,
    pids: () => [proc.pid, ...childPids(proc.pid)],
    stop: () => proc.stop(),
  };
}
