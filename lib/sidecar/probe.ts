/**
 * `mca --probe`: the sidecar's startup probe.
 *
 * The kubelet starts the app containers only once this exits 0. A kubelet
 * httpGet/tcpSocket probe would dial the Pod IP (the proxy listens on
 * loopback only) and a distroless image has no shell, so the binary probes
 * itself: it checks what an app will read at start (the service-account
 * files) and what it will dial (a TLS server on loopback that the written
 * `ca.crt` verifies, answering MCA's own readiness path).
 *
 * @module
 */

import { request } from "node:https";
import { join } from "node:path";

/** The path the proxy answers itself, never forwarded upstream. */
export const READY_PATH = "/mca/readyz";

/** Where and how long to probe. */
export interface ProbeOptions {
  /** The app-facing service-account directory. */
  saDir: string;
  /** The proxy's port on 127.0.0.1. */
  port: number;
  /** Overall deadline for one probe run. */
  timeoutMs: number;
  /** Host to dial; 127.0.0.1 unless a test says otherwise. */
  host?: string;
}

/** The probe's verdict; `reason` says what is missing when not ready. */
export interface ProbeResult {
  ok: boolean;
  reason: string;
}

/** Runs one probe; never throws. */
export async function runProbe(options: ProbeOptions): Promise<ProbeResult> {
  const files: Record<string, string> = {};
  for (const name of ["ca.crt", "token", "namespace"]) {
    try {
      files[name] = await Deno.readTextFile(join(options.saDir, name));
    } catch {
      return { ok: false, reason: `${join(options.saDir, name)} is missing` };
    }
    if (files[name].length === 0) {
      return { ok: false, reason: `${join(options.saDir, name)} is empty` };
    }
  }
  try {
    const status = await getStatus(options, files["ca.crt"]);
    if (status !== 200) {
      return {
        ok: false,
        reason: `https://${
          hostOf(options)
        }:${options.port}${READY_PATH} answered ${status}`,
      };
    }
  } catch (error) {
    return {
      ok: false,
      reason: `https://${hostOf(options)}:${options.port}${READY_PATH}: ${
        (error as Error).message
      }`,
    };
  }
  return { ok: true, reason: "ready" };
}

function hostOf(options: ProbeOptions): string {
  return options.host ?? "127.0.0.1";
}

function getStatus(options: ProbeOptions, ca: string): Promise<number> {
  const { promise, resolve, reject } = Promise.withResolvers<number>();
  const req = request({
    host: hostOf(options),
    port: options.port,
    path: READY_PATH,
    method: "GET",
    ca,
    agent: false,
    timeout: options.timeoutMs,
  }, (res) => {
    res.resume();
    res.on("end", () => resolve(res.statusCode ?? 0));
    res.on("error", reject);
  });
  req.on("timeout", () => {
    req.destroy(new Error(`no answer within ${options.timeoutMs} ms`));
  });
  req.on("error", reject);
  req.end();
  return promise;
}
