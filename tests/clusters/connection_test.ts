import assert from "node:assert/strict";
import { Agent } from "node:https";
import {
  lastChunkHolder,
  requestOptionsFor,
  upstreamHref,
  upstreamPath,
} from "../../lib/clusters/connection.ts";
import type { UpstreamAuth } from "../../lib/clusters/upstream.ts";

const agent = new Agent({ keepAlive: false });
const auth: UpstreamAuth = { agent, tls: { ca: "CA PEM" } };

Deno.test("connection: a kubeconfig server's base path prefixes every target", () => {
  const base = new URL("https://h:6443/k8s/clusters/c-1/");
  assert.equal(
    upstreamPath(base, "/api/v1/pods?limit=1"),
    "/k8s/clusters/c-1/api/v1/pods?limit=1",
  );
  assert.equal(upstreamPath(base, "api"), "/k8s/clusters/c-1/api");
  assert.equal(upstreamPath(new URL("https://h"), "/version"), "/version");
  assert.equal(
    upstreamHref(base, "/api?x=1"),
    "https://h:6443/k8s/clusters/c-1/api?x=1",
  );
});

Deno.test("connection: an IPv6 literal loses its brackets; the port defaults to 443", () => {
  const options = requestOptionsFor(new URL("https://[fd00::1]/"), auth, {
    method: "GET",
    target: "/api",
    headers: {},
  });
  assert.equal(options.host, "fd00::1");
  assert.equal(options.port, 443);
  assert.equal(options.path, "/api");
  assert.equal(options.agent, agent);
  assert.equal(options.ca, undefined);
});

Deno.test("connection: a dedicated call has its own connection with the TLS settings", () => {
  const options = requestOptionsFor(new URL("https://10.0.0.1:6443"), auth, {
    method: "GET",
    target: "/api/v1/pods?watch=1",
    headers: { accept: "application/json" },
    dedicated: true,
  });
  assert.equal(options.agent, false);
  assert.equal(options.ca, "CA PEM");
  assert.equal(options.port, "6443");
  assert.deepEqual(options.headers, { accept: "application/json" });
});

Deno.test("connection: the last chunk is held for end(); unheld chunks pass at once", () => {
  const a = new Uint8Array([1]);
  const b = new Uint8Array([2]);
  const held = lastChunkHolder(true);
  assert.equal(held.next(a), undefined);
  assert.equal(held.next(b), a);
  assert.equal(held.last(), b);
  const passing = lastChunkHolder(false);
  assert.equal(passing.next(a), a);
  assert.equal(passing.next(b), b);
  assert.equal(passing.last(), undefined);
  assert.equal(lastChunkHolder(true).last(), undefined);
});
