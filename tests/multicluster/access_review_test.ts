import assert from "node:assert/strict";
import {
  appCall,
  type Fixture,
  startFixture,
} from "../support/sidecar_fixture.ts";
import { openWatch, ROUTING } from "../support/multicluster.ts";
import { encodeResourceVersion } from "../../lib/kube/resource_version.ts";

const SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

function canI(f: Fixture, attrs: Record<string, string>) {
  const body = JSON.stringify({
    kind: "SelfSubjectAccessReview",
    apiVersion: "authorization.k8s.io/v1",
    spec: { resourceAttributes: attrs },
  });
  return appCall(f, "POST", SSAR, {
    headers: { "content-type": "application/json" },
    body,
  });
}

function reviewsAsked(f: Fixture): Record<string, number> {
  const count = (r: { requests: { url: string }[] }) =>
    r.requests.filter((q) => q.url.includes("accessreviews")).length;
  return {
    local: count(f.upstream),
    ...Object.fromEntries([...f.remotes].map(([n, r]) => [n, count(r)])),
  };
}

Deno.test("multi-cluster: an access review is answered by the clusters of the call it asks about", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    // before: always local's answer (the review itself is cluster-scoped)
    const mapped = await canI(f, {
      namespace: "app-ns",
      verb: "create",
      resource: "configmaps",
    });
    assert.equal(mapped.status, 201, mapped.text);
    const answer = JSON.parse(mapped.text);
    assert.equal(answer.status.allowed, true);
    assert.equal(answer.status.reason, "asked about namespace remote-ns");
    assert.equal(answer.spec.resourceAttributes.namespace, "app-ns");
    assert.deepEqual(reviewsAsked(f), { local: 0, east: 1, west: 0 });

    // a spread set: every cluster asked, allowed only if all allow
    const both = await canI(f, {
      namespace: "spread-1",
      verb: "list",
      resource: "configmaps",
    });
    assert.equal(JSON.parse(both.text).status.allowed, true);
    assert.deepEqual(reviewsAsked(f), { local: 0, east: 2, west: 1 });
    f.remotes.get("west")!.allowReviews(false);
    for (const verb of ["list", "create", "delete"]) {
      const denied = await canI(f, {
        namespace: "spread-1",
        verb,
        resource: "configmaps",
        name: verb === "delete" ? "x" : "",
      });
      const status = JSON.parse(denied.text).status;
      assert.equal(status.allowed, false, `${verb}: ${denied.text}`);
      assert.match(status.reason, /cluster west/);
    }
    // a call that matches no rule: local's answer
    const plain = await canI(f, {
      namespace: "other",
      verb: "get",
      resource: "pods",
    });
    assert.equal(JSON.parse(plain.text).status.allowed, true);
    assert.equal(reviewsAsked(f).local, 1);
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: a watch of one object from its GET version ({east: N}) is not a 410", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const rv = encodeResourceVersion({ east: "100" });
    const byName = openWatch(
      f,
      `/api/v1/namespaces/spread-1/configmaps?watch=1&fieldSelector=${
        encodeURIComponent("metadata.name=alpha")
      }&resourceVersion=${rv}`,
    );
    await byName.head;
    const watchOf = async (name: string) => {
      await f.remotes.get(name)!.waitForWatches(1);
      const r = f.remotes.get(name)!.requests.filter((q) =>
        q.url.includes("watch=")
      );
      return new URL(r.at(-1)!.url, "https://x");
    };
    const east = await watchOf("east");
    const west = await watchOf("west");
    assert.equal(east.searchParams.get("resourceVersion"), "100");
    assert.equal(
      west.searchParams.get("resourceVersion"),
      null,
      "west from now",
    );
    f.remotes.get("east")!.pushWatchEvent({
      type: "MODIFIED",
      object: {
        kind: "ConfigMap",
        metadata: {
          name: "alpha",
          namespace: "spread-1",
          resourceVersion: "101",
        },
      },
    });
    await byName.until(1);
    assert.equal(byName.lines[0].type, "MODIFIED");
    byName.close();
    // a watch of the whole namespace from an object's version still is (list again)
    const all = openWatch(
      f,
      `/api/v1/namespaces/spread-1/configmaps?watch=1&resourceVersion=${rv}`,
    );
    await all.ended;
    assert.equal(all.lines[0].type, "ERROR");
  } finally {
    await f.close();
  }
});

/** A protobuf field: tag, length, bytes (strings and messages alike). */
function field(n: number, value: Uint8Array | string): number[] {
  const bytes = typeof value === "string"
    ? [...new TextEncoder().encode(value)]
    : [...value];
  return [(n << 3) | 2, bytes.length, ...bytes];
}

Deno.test("multi-cluster: a protobuf access review (kubectl's) is read and asked as JSON", async () => {
  const f = await startFixture({ remotes: ["east", "west"], routing: ROUTING });
  try {
    const attrs = new Uint8Array([
      ...field(1, "app-ns"),
      ...field(2, "create"),
      ...field(5, "configmaps"),
    ]);
    const raw = new Uint8Array([
      ...field(1, new Uint8Array()),
      ...field(2, new Uint8Array(field(1, attrs))),
      ...field(3, new Uint8Array()),
    ]);
    const typeMeta = new Uint8Array([
      ...field(1, "authorization.k8s.io/v1"),
      ...field(2, "SelfSubjectAccessReview"),
    ]);
    const body = new Uint8Array([
      0x6b,
      0x38,
      0x73,
      0x00,
      ...field(1, typeMeta),
      ...field(2, raw),
      ...field(3, ""),
      ...field(4, ""),
    ]);
    const answer = await appCall(f, "POST", SSAR, {
      headers: {
        "content-type": "application/vnd.kubernetes.protobuf",
        "content-length": String(body.length),
      },
      body: new TextDecoder("latin1").decode(body),
    });
    assert.equal(answer.status, 201, answer.text);
    const review = JSON.parse(answer.text);
    assert.equal(review.status.reason, "asked about namespace remote-ns");
    assert.equal(review.spec.resourceAttributes.namespace, "app-ns");
    assert.deepEqual(reviewsAsked(f), { local: 0, east: 1, west: 0 });
  } finally {
    await f.close();
  }
});

Deno.test("multi-cluster: an access review of a call mca's policy denies is not allowed, and no cluster is asked", async () => {
  const f = await startFixture({
    policyYaml: `apiVersion: mca.io/v1alpha1
kind: Policy
rules:
  - {name: no-secrets, effect: deny, resources: [secrets]}
`,
  });
  try {
    const answer = await canI(f, {
      namespace: "other",
      verb: "get",
      resource: "secrets",
    });
    assert.equal(answer.status, 201, answer.text);
    const status = JSON.parse(answer.text).status;
    assert.equal(status.allowed, false);
    assert.match(status.reason, /cluster local: mca's call policy denies it/);
    assert.equal(reviewsAsked(f).local, 0);
    // one the policy lets through is the cluster's to answer
    const pods = await canI(f, {
      namespace: "other",
      verb: "get",
      resource: "pods",
    });
    assert.equal(JSON.parse(pods.text).status.allowed, true, pods.text);
  } finally {
    await f.close();
  }
});
