import assert from "node:assert/strict";
import {
  BadReviewError,
  parseReview,
  review,
} from "../../lib/webhook/admission.ts";
import { injectPodSpec, type JsonObject } from "../../lib/inject/pod_spec.ts";
import { decide } from "../../lib/webhook/decide.ts";

const CTX = { ownNamespace: "mca-system", defaults: { image: "r/mca:1" } };

function pod(extra: JsonObject = {}, spec: JsonObject = {}): JsonObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { generateName: "web-abc12-", namespace: "team", ...extra },
    spec: { containers: [{ name: "app", image: "busybox" }], ...spec },
  };
}

function reviewOf(object: JsonObject, request: JsonObject = {}): JsonObject {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "u-1",
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      operation: "CREATE",
      namespace: "team",
      object,
      ...request,
    },
  };
}

function patchOf(result: { review: JsonObject }): unknown[] | undefined {
  const response = result.review.response as JsonObject;
  if (response.patch === undefined) return undefined;
  assert.equal(response.patchType, "JSONPatch");
  return JSON.parse(atob(response.patch as string));
}

Deno.test("admission: a generateName Pod is injected with the webhook's defaults", () => {
  const result = review(reviewOf(pod()), CTX);
  const response = result.review.response as JsonObject;
  assert.equal(response.uid, "u-1");
  assert.equal(response.allowed, true);
  const ops = patchOf(result)!;
  assert.ok(ops.length > 0);
  assert.equal(result.log.outcome, "injected");
  assert.equal(result.log.pod, "web-abc12-*");
  const replaced = ops.find((o) =>
    (o as JsonObject).path === "/spec/initContainers"
  ) as JsonObject;
  assert.equal(
    ((replaced.value as JsonObject[])[0] as JsonObject).image,
    "r/mca:1",
  );
});

Deno.test("admission: an already injected Pod gets no patch field", () => {
  const p = pod();
  p.spec = injectPodSpec(p.spec as JsonObject, CTX.defaults);
  const result = review(reviewOf(p), CTX);
  assert.equal(patchOf(result), undefined);
  assert.equal(result.log.outcome, "already_injected");
});

Deno.test("admission: unjectable Pods are allowed unchanged with a warning", () => {
  const cases: [JsonObject, RegExp][] = [
    [pod({}, { hostNetwork: true }), /hostNetwork/],
    [pod({}, { shareProcessNamespace: true }), /shareProcessNamespace/],
    [
      pod({}, { containers: [{ name: "mca", image: "nginx" }] }),
      /named "mca"/,
    ],
    [pod({ annotations: { "mca.io/memory-limit": "lots" } }), /memory-limit/],
    [pod({ annotations: { "mca.io/image": " " } }), /mca.io\/image/],
    [
      pod({ annotations: { "mca.io/routing-configmap": "Bad_Name" } }),
      /routing ConfigMap name/,
    ],
    [pod({ labels: { "mca.io/inject": "yes" } }), /enabled.*disabled/],
  ];
  for (const [object, pattern] of cases) {
    const result = review(reviewOf(object), CTX);
    const response = result.review.response as JsonObject;
    assert.equal(response.allowed, true);
    assert.equal(response.patch, undefined);
    assert.match((response.warnings as string[])[0], pattern);
    assert.equal(result.log.outcome, "skipped");
  }
});

Deno.test("admission: hostNetwork and shareProcessNamespace have reason codes", () => {
  const cases: [JsonObject, string][] = [
    [{ hostNetwork: true }, "host_network"],
    // a shared PID namespace lets an app read mca's real token via /proc
    // (proven on the node tier): refused before any other check of the spec
    [{ shareProcessNamespace: true }, "share_process_namespace"],
  ];
  for (const [spec, reason] of cases) {
    const result = review(reviewOf(pod({}, spec)), CTX);
    assert.equal(result.log.reason, reason);
    const response = result.review.response as JsonObject;
    assert.equal(response.allowed, true);
    assert.equal((response.warnings as string[]).length, 1);
  }
  const off = review(reviewOf(pod({}, { shareProcessNamespace: false })), CTX);
  assert.equal(off.log.outcome, "injected");
});

Deno.test("admission: disabled label and protected namespaces: untouched, no warning", () => {
  const disabled = review(
    reviewOf(pod({ labels: { "mca.io/inject": "disabled" } })),
    CTX,
  );
  assert.equal(disabled.log.reason, "pod_label_disabled");
  for (const ns of ["kube-system", "kube-public", "mca-system"]) {
    const result = review(reviewOf(pod(), { namespace: ns }), CTX);
    const response = result.review.response as JsonObject;
    assert.equal(response.patch, undefined);
    assert.equal(response.warnings, undefined);
    assert.equal(result.log.reason, "protected_namespace");
  }
});

Deno.test("admission: annotations set the options", () => {
  const decision = decide(
    pod({
      annotations: {
        "mca.io/image": "x/mca:2",
        "mca.io/cpu-request": "50m",
        "mca.io/memory-limit": "",
        "mca.io/clusters-secret": "kc",
        "mca.io/routing-configmap": "routes",
        "mca.io/policy-configmap": "pol",
      },
    }),
    { ...CTX, namespace: "team" },
  );
  assert.deepEqual(decision, {
    inject: true,
    options: {
      image: "x/mca:2",
      cpuRequest: "50m",
      memoryLimit: "",
      clustersSecret: "kc",
      routingConfigMap: "routes",
      policyConfigMap: "pol",
    },
  });
});

Deno.test("admission: other kinds and operations are allowed without a patch", () => {
  const result = review(reviewOf(pod(), { operation: "UPDATE" }), CTX);
  assert.equal(patchOf(result), undefined);
  assert.equal(result.log.reason, "not_pod_create");
});

Deno.test("admission: bad bodies are refused with the reason", () => {
  const cases: [string, RegExp][] = [
    ["not json", /not JSON/],
    ["[]", /not a JSON object/],
    [
      JSON.stringify({
        apiVersion: "admission.k8s.io/v1beta1",
        kind: "AdmissionReview",
      }),
      /admission.k8s.io\/v1/,
    ],
    [
      JSON.stringify({
        apiVersion: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        request: {},
      }),
      /request.uid/,
    ],
  ];
  for (const [body, pattern] of cases) {
    assert.throws(
      () => parseReview(body),
      (e: Error) => e instanceof BadReviewError && pattern.test(e.message),
      body,
    );
  }
  assert.equal(
    parseReview(JSON.stringify(reviewOf(pod()))).kind,
    "AdmissionReview",
  );
});
