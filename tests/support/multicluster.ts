/**
 * Shared pieces of the multi-cluster tests (two fake remote clusters behind
 * kubeconfigs, a routing file): the rules, log helpers, a watch client.
 *
 * @module
 */

import { request } from "node:https";
import type { Fixture } from "./sidecar_fixture.ts";

/** Rules the multi-cluster tests share: mapping, spread (strict and partial), failover. */
export const ROUTING = `
rules:
  - name: mapped
    match: {namespaces: [app-ns]}
    cluster: east
    namespace: remote-ns
  - name: spread
    match: {namespaces: ["spread-*"]}
    clusters: [east, west]
    strategy: round-robin
  - name: best-effort
    match: {namespaces: ["partial-*"]}
    clusters: [east, west]
    strategy: round-robin
    partial: true
  - name: failover
    match: {namespaces: [ha]}
    clusters: [east, west]
`;

/** The "api call" log lines of a fixture. */
export function calls(f: Fixture) {
  return f.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "api call");
}

/** Resolves once a log line satisfies `predicate` (10 s deadline). */
export async function untilLogged(
  f: Fixture,
  predicate: (line: Record<string, unknown>) => boolean,
) {
  const deadline = Date.now() + 10_000;
  while (!f.logs.some((l) => predicate(JSON.parse(l)))) {
    if (Date.now() > deadline) throw new Error("expected log line never came");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Opens a watch through the sidecar and collects its events. */
export function openWatch(f: Fixture, path: string) {
  const lines: Record<string, unknown>[] = [];
  let wake: (() => void) | undefined;
  const { promise: head, resolve: gotHead } = Promise.withResolvers<
    Record<string, string | string[] | undefined>
  >();
  const { promise: ended, resolve: end } = Promise.withResolvers<void>();
  const req = request({
    host: "127.0.0.1",
    port: f.port,
    path,
    ca: f.appCa(),
    agent: false,
  }, (res) => {
    gotHead(res.headers);
    let buffer = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        lines.push(JSON.parse(buffer.slice(0, nl)));
        buffer = buffer.slice(nl + 1);
        wake?.();
      }
    });
    res.on("end", () => end());
  });
  req.on("error", () => end());
  req.end();
  return {
    head,
    lines,
    ended,
    until(n: number): Promise<void> {
      if (lines.length >= n) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      wake = () => lines.length >= n && resolve();
      return promise;
    },
    close: () => req.destroy(),
  };
}

/** The last watch request a remote cluster received. */
export async function lastWatchUrl(
  f: Fixture,
  cluster: string,
): Promise<string> {
  // a watch request is recorded once its (empty) body has been read
  const remote = f.remotes.get(cluster)!;
  await remote.waitForRequests(2);
  return remote.requests.filter((r) => r.url.includes("watch=")).at(-1)!.url;
}
