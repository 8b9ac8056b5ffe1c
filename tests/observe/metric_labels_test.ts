import assert from "node:assert/strict";
import { parseRequestInfo } from "../../lib/kube/request_info.ts";
import {
  BoundedValues,
  cleanCode,
  cleanScope,
  cleanVerb,
  cleanVersion,
  OTHER,
} from "../../lib/observe/metric_labels.ts";

function verb(method: string, target: string, contentType?: string): string {
  return cleanVerb(method, parseRequestInfo(method, target), contentType);
}

Deno.test("metric labels: verbs are normalised as kube-apiserver's metrics do", () => {
  assert.equal(verb("GET", "/api/v1/namespaces/a/pods/p"), "GET");
  assert.equal(verb("GET", "/api/v1/namespaces/a/pods"), "LIST");
  assert.equal(verb("GET", "/api/v1/pods"), "LIST");
  assert.equal(verb("HEAD", "/api/v1/pods"), "LIST");
  assert.equal(verb("GET", "/api/v1/pods?watch=true"), "WATCH");
  assert.equal(verb("GET", "/api/v1/pods?watch=1"), "WATCH");
  assert.equal(verb("GET", "/api/v1/pods?watch=false"), "LIST");
  assert.equal(verb("GET", "/api/v1/watch/namespaces/a/pods"), "WATCH");
  assert.equal(verb("POST", "/api/v1/namespaces/a/pods"), "POST");
  assert.equal(verb("PUT", "/api/v1/namespaces/a/pods/p"), "PUT");
  assert.equal(verb("DELETE", "/api/v1/namespaces/a/pods/p"), "DELETE");
  assert.equal(
    verb("PATCH", "/apis/apps/v1/namespaces/a/deployments/d"),
    "PATCH",
  );
  assert.equal(
    verb(
      "PATCH",
      "/apis/apps/v1/namespaces/a/deployments/d",
      "application/apply-patch+yaml",
    ),
    "APPLY",
  );
  assert.equal(
    verb(
      "PATCH",
      "/api/v1/namespaces/a/pods/p",
      "application/merge-patch+json",
    ),
    "PATCH",
  );
  for (const sub of ["exec", "attach", "portforward", "proxy", "log"]) {
    assert.equal(verb("POST", `/api/v1/namespaces/a/pods/p/${sub}`), "CONNECT");
  }
  assert.equal(
    verb("GET", "/api/v1/namespaces/a/pods/p/log?follow=true"),
    "CONNECT",
  );
  assert.equal(verb("GET", "/version"), "GET");
  assert.equal(verb("PROPFIND", "/api/v1/pods"), OTHER);
  assert.equal(verb("OPTIONS", "/api"), OTHER);
});

Deno.test("metric labels: scope is resource, namespace, cluster or empty", () => {
  assert.equal(
    cleanScope(parseRequestInfo("GET", "/api/v1/namespaces/a/pods/p")),
    "resource",
  );
  assert.equal(
    cleanScope(parseRequestInfo("POST", "/api/v1/namespaces/a/pods")),
    "resource",
  );
  assert.equal(
    cleanScope(parseRequestInfo("GET", "/api/v1/namespaces/a/pods")),
    "namespace",
  );
  assert.equal(cleanScope(parseRequestInfo("GET", "/api/v1/nodes")), "cluster");
  assert.equal(cleanScope(parseRequestInfo("GET", "/healthz")), "");
});

Deno.test("metric labels: codes, versions and admitted values stay bounded", () => {
  assert.equal(cleanCode(200), "200");
  assert.equal(cleanCode(0), "0");
  assert.equal(cleanCode(999), OTHER);
  assert.equal(cleanVersion("v1beta2"), "v1beta2");
  assert.equal(cleanVersion("eyJhbGciOi"), OTHER);
  const b = new BoundedValues({ known: ["pods"], cap: 2 });
  assert.equal(b.value("pods", false), "pods");
  assert.equal(b.value("widgets", false), OTHER, "not admitted without a 2xx");
  assert.equal(b.value("widgets", true), "widgets");
  assert.equal(b.value("widgets", false), "widgets", "admitted stays");
  assert.equal(b.value("Bearer.X", true), OTHER, "malformed never admitted");
  assert.equal(b.value("gadgets", true), "gadgets");
  assert.equal(b.value("gizmos", true), OTHER, "over the cap");
  assert.equal(b.value("x".repeat(64), true), OTHER);
});
