import assert from "node:assert/strict";
import fc from "fast-check";
import {
  parseRequestInfo,
  type RequestInfo,
} from "../../lib/kube/request_info.ts";
import { propertyRuns } from "../support/property.ts";

/** A resource RequestInfo for `target`, from a Go-table-shaped row. */
function resource(
  target: string,
  verb: string,
  apiPrefix: string,
  apiGroup: string,
  apiVersion: string,
  namespace: string,
  res: string,
  subresource: string,
  name: string,
  parts: string[],
): RequestInfo {
  return {
    isResourceRequest: true,
    path: decodeURIComponent(target.split("?")[0]),
    verb,
    apiPrefix,
    apiGroup,
    apiVersion,
    namespace,
    resource: res,
    subresource,
    name,
    parts,
  };
}

/** method, target, verb, apiPrefix, apiGroup, apiVersion, namespace,
 * resource, subresource, name, parts: the Go table's column order. */
type Row = [
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string[],
];

// requestinfo_test.go TestGetAPIRequestInfo successCases. Go's table says
// apiPrefix "api" for /apis/... rows but never checks it; "apis" is what the
// Go code returns, so that is what is expected here.
// deno-fmt-ignore
const goSuccessCases: Row[] = [
  // resource paths
  ["GET", "/api/v1/namespaces", "list", "api", "", "v1", "", "namespaces", "", "", ["namespaces"]],
  ["GET", "/api/v1/namespaces/other", "get", "api", "", "v1", "other", "namespaces", "", "other", ["namespaces", "other"]],
  ["GET", "/api/v1/namespaces/other/pods", "list", "api", "", "v1", "other", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]],
  ["HEAD", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]],
  ["GET", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", "", ["pods"]],
  ["HEAD", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]],
  ["GET", "/api/v1/namespaces/other/pods", "list", "api", "", "v1", "other", "pods", "", "", ["pods"]],
  // special verbs
  ["GET", "/api/v1/proxy/namespaces/other/pods/foo", "proxy", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]],
  ["GET", "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource", "proxy", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo", "subpath", "not", "a", "subresource"]],
  ["GET", "/api/v1/watch/pods", "watch", "api", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/pods?watch=true", "watch", "api", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/pods?watch=false", "list", "api", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/watch/namespaces/other/pods", "watch", "api", "", "v1", "other", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "api", "", "v1", "other", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/namespaces/other/pods?watch=0", "list", "api", "", "v1", "other", "pods", "", "", ["pods"]],
  // subresource identification
  ["GET", "/api/v1/namespaces/other/pods/foo/status", "get", "api", "", "v1", "other", "pods", "status", "foo", ["pods", "foo", "status"]],
  ["GET", "/api/v1/namespaces/other/pods/foo/proxy/subpath", "get", "api", "", "v1", "other", "pods", "proxy", "foo", ["pods", "foo", "proxy", "subpath"]],
  ["PUT", "/api/v1/namespaces/other/finalize", "update", "api", "", "v1", "other", "namespaces", "finalize", "other", ["namespaces", "other", "finalize"]],
  ["PUT", "/api/v1/namespaces/other/status", "update", "api", "", "v1", "other", "namespaces", "status", "other", ["namespaces", "other", "status"]],
  // verb identification
  ["PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]],
  ["DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]],
  ["POST", "/api/v1/namespaces/other/pods", "create", "api", "", "v1", "other", "pods", "", "", ["pods"]],
  // deletecollection verb identification
  ["DELETE", "/api/v1/nodes", "deletecollection", "api", "", "v1", "", "nodes", "", "", ["nodes"]],
  ["DELETE", "/api/v1/namespaces", "deletecollection", "api", "", "v1", "", "namespaces", "", "", ["namespaces"]],
  ["DELETE", "/api/v1/namespaces/other/pods", "deletecollection", "api", "", "v1", "other", "pods", "", "", ["pods"]],
  ["DELETE", "/apis/extensions/v1/namespaces/other/pods", "deletecollection", "apis", "extensions", "v1", "other", "pods", "", "", ["pods"]],
  // api group identification
  ["POST", "/apis/extensions/v1/namespaces/other/pods", "create", "apis", "extensions", "v1", "other", "pods", "", "", ["pods"]],
  // api version identification
  ["POST", "/apis/extensions/v1beta3/namespaces/other/pods", "create", "apis", "extensions", "v1beta3", "other", "pods", "", "", ["pods"]],
];

// Cases MCA relies on beyond the Go table.
// deno-fmt-ignore
const extraCases: Row[] = [
  // An older Go table expected namespace "" here (from an unmerged PR);
  // the current code sets it, like GET /api/v1/namespaces/other.
  ["PATCH", "/api/v1/namespaces/new-namespace", "patch", "api", "", "v1", "new-namespace", "namespaces", "", "new-namespace", ["namespaces", "new-namespace"]],
  ["PUT", "/api/v1/namespaces/x/status", "update", "api", "", "v1", "x", "namespaces", "status", "x", ["namespaces", "x", "status"]],
  ["GET", "/api/v1/namespaces/x/finalize", "get", "api", "", "v1", "x", "namespaces", "finalize", "x", ["namespaces", "x", "finalize"]],
  ["DELETE", "/api/v1/namespaces/ns/configmaps", "deletecollection", "api", "", "v1", "ns", "configmaps", "", "", ["configmaps"]],
  ["DELETE", "/apis/apps/v1/deployments", "deletecollection", "apis", "apps", "v1", "", "deployments", "", "", ["deployments"]],
  ["GET", "/api/v1/pods?watch=True", "watch", "api", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/pods?watch=FALSE", "list", "api", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/pods?watch=", "watch", "api", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/pods?watch", "watch", "api", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/pods?watch=0&watch=1", "list", "api", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/pods?Watch=1", "list", "api", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/pods?watch=fal%73e", "list", "api", "", "v1", "", "pods", "", "", ["pods"]],
  // ?watch on a named GET is still get
  ["GET", "/api/v1/namespaces/ns/pods/p?watch=1", "get", "api", "", "v1", "ns", "pods", "", "p", ["pods", "p"]],
  ["GET", "/api/v1/watch/namespaces/ns/pods", "watch", "api", "", "v1", "ns", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/watch/namespaces/ns/pods/p", "watch", "api", "", "v1", "ns", "pods", "", "p", ["pods", "p"]],
  ["GET", "/apis/apps/v1/namespaces/ns/deployments/d/scale", "get", "apis", "apps", "v1", "ns", "deployments", "scale", "d", ["deployments", "d", "scale"]],
  ["PATCH", "/apis/apps/v1/namespaces/ns/deployments/d/scale", "patch", "apis", "apps", "v1", "ns", "deployments", "scale", "d", ["deployments", "d", "scale"]],
  ["GET", "/api/v1/namespaces/ns/pods/p/exec?command=ls", "get", "api", "", "v1", "ns", "pods", "exec", "p", ["pods", "p", "exec"]],
  ["POST", "/api/v1/namespaces/ns/pods/p/exec?command=ls&stdout=true", "create", "api", "", "v1", "ns", "pods", "exec", "p", ["pods", "p", "exec"]],
  ["GET", "/api/v1/namespaces/ns/pods/p/portforward", "get", "api", "", "v1", "ns", "pods", "portforward", "p", ["pods", "p", "portforward"]],
  ["POST", "/api/v1/namespaces/ns/pods/p/portforward?ports=80", "create", "api", "", "v1", "ns", "pods", "portforward", "p", ["pods", "p", "portforward"]],
  ["GET", "/api/v1/namespaces/ns/pods/p/log?follow=true", "get", "api", "", "v1", "ns", "pods", "log", "p", ["pods", "p", "log"]],
  ["POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", "create", "apis", "authentication.k8s.io", "v1", "", "selfsubjectreviews", "", "", ["selfsubjectreviews"]],
  ["POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "create", "apis", "authorization.k8s.io", "v1", "", "selfsubjectaccessreviews", "", "", ["selfsubjectaccessreviews"]],
  ["PUT", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", "update", "apis", "coordination.k8s.io", "v1", "ns", "leases", "", "l", ["leases", "l"]],
  ["GET", "/api/v1/nodes/n1/proxy/metrics", "get", "api", "", "v1", "", "nodes", "proxy", "n1", ["nodes", "n1", "proxy", "metrics"]],
  ["GET", "/apis/apps/v1/watch/deployments", "watch", "apis", "apps", "v1", "", "deployments", "", "", ["deployments"]],
  // Unknown methods get no verb on resource paths (Go matches case-sensitively).
  ["OPTIONS", "/api/v1/pods", "", "api", "", "v1", "", "pods", "", "", ["pods"]],
  ["get", "/api/v1/pods", "", "api", "", "v1", "", "pods", "", "", ["pods"]],
  // Faithful quirks: Go splits the *decoded* path and keeps inner empties.
  ["GET", "/api/v1/namespaces/a%2Fb/pods", "get", "api", "", "v1", "a", "b", "", "pods", ["b", "pods"]],
  ["GET", "/api//v1/pods", "get", "api", "", "", "", "v1", "", "pods", ["v1", "pods"]],
  ["GET", "//api/v1/pods/", "list", "api", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/namespaces/n%20s/pods+x", "list", "api", "", "v1", "n s", "pods+x", "", "", ["pods+x"]],
];

Deno.test("Go TestGetAPIRequestInfo success cases", () => {
  for (const [method, target, ...row] of goSuccessCases) {
    const expected = resource(target, ...row);
    assert.deepStrictEqual(parseRequestInfo(method, target), expected, target);
  }
});

Deno.test("extra resource cases", () => {
  for (const [method, target, ...row] of extraCases) {
    const expected = resource(target, ...row);
    assert.deepStrictEqual(parseRequestInfo(method, target), expected, target);
  }
});

Deno.test("Go errorCases and TestGetNonAPIRequestInfo", () => {
  const cases: [string, boolean][] = [
    // errorCases
    ["/", false],
    ["/api/version/", false],
    ["/apis/group/version/", false],
    ["/badprefix/version/resource", false],
    ["/apis/version/resource", false],
    // TestGetNonAPIRequestInfo
    ["/api/version/resource", true],
    ["/apis/group/version/resource/name/subresource", true],
    ["/api/version/resource/name/subresource", true],
    ["/apis/batch/v1/job", true],
    ["/apis/batch/v1/job/foo", true],
    ["/apis/batch/v1/job/foo/scale", true],
    ["/not-api/version/resource", false],
    ["/apis/extensions/v1beta1", false],
    ["/apis/extensions/v1beta1/", false],
    ["/api/version", false],
    ["/api", false],
    ["/", false],
    ["", false],
  ];
  for (const [target, expected] of cases) {
    const info = parseRequestInfo("GET", target);
    assert.equal(info.isResourceRequest, expected, target);
    if (!expected) assert.equal(info.verb, "get", target);
  }
});

Deno.test("non-resource URLs keep the lowercase HTTP method", () => {
  const bare = {
    isResourceRequest: false,
    apiPrefix: "",
    apiGroup: "",
    apiVersion: "",
    namespace: "",
    resource: "",
    subresource: "",
    name: "",
    parts: [],
  };
  const cases: [string, string, Partial<RequestInfo>?][] = [
    ["GET", "/healthz"],
    ["GET", "/livez?verbose"],
    ["GET", "/version"],
    ["GET", "/openapi/v2"],
    ["GET", "/openapi/v3/apis/apps/v1"],
    ["GET", "/api"],
    ["GET", "/apis"],
    ["GET", "/api/v1"],
    ["POST", "/metrics"],
    // Go sets APIPrefix before giving up on a short /apis path.
    ["GET", "/apis/apps"],
    ["GET", "/apis/apps/v1", { apiPrefix: "apis" }],
    ["GET", "/apis/apps/v1/", { apiPrefix: "apis" }],
  ];
  for (const [method, target, extra] of cases) {
    assert.deepStrictEqual(parseRequestInfo(method, target), {
      ...bare,
      path: target.split("?")[0],
      verb: method.toLowerCase(),
      ...extra,
    }, target);
  }
});

Deno.test("special verb without a resource: Go's partial info", () => {
  // Go returns an error (apiserver: 500) with the info known so far.
  assert.deepStrictEqual(parseRequestInfo("GET", "/api/v1/watch"), {
    isResourceRequest: true,
    path: "/api/v1/watch",
    verb: "get",
    apiPrefix: "api",
    apiGroup: "",
    apiVersion: "v1",
    namespace: "",
    resource: "",
    subresource: "",
    name: "",
    parts: [],
  });
  assert.equal(parseRequestInfo("GET", "/apis/g/v1/proxy/").verb, "get");
});

Deno.test("Go TestSelectorParsing (name, verb, labelSelector)", () => {
  const cases: [string, string, string, string, string | undefined][] = [
    ["GET", "/apis/group/version/resource", "", "list", undefined],
    [
      "GET",
      "/apis/group/version/resource?fieldSelector=metadata.name=name1",
      "name1",
      "list",
      undefined,
    ],
    [
      "GET",
      "/apis/group/version/resource?watch=true&fieldSelector=metadata.name=name1",
      "name1",
      "watch",
      undefined,
    ],
    [
      "GET",
      "/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux",
      "",
      "list",
      "baz=qux",
    ],
    [
      "GET",
      "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo",
      "",
      "list",
      undefined,
    ],
    [
      "GET",
      "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true",
      "",
      "watch",
      undefined,
    ],
    [
      "GET",
      "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=false",
      "",
      "list",
      undefined,
    ],
    [
      "DELETE",
      "/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux",
      "",
      "deletecollection",
      "baz=qux",
    ],
    [
      "GET",
      "/apis/group/version/resource?fieldSelector=metadata.name=foo&fieldSelector=metadata.name=bar&labelSelector=foo=bar&labelSelector=foo=baz",
      "foo",
      "list",
      "foo=bar",
    ],
    [
      "GET",
      "/apis/group/version/resource/name?fieldSelector=foo=bar&labelSelector=foo=bar",
      "name",
      "get",
      undefined,
    ],
    [
      "GET",
      "/apis/group/version/watch/resource?fieldSelector=metadata.name=foo&labelSelector=foo=bar",
      "",
      "watch",
      undefined,
    ],
    [
      "GET",
      "/apis/group/version/watch/resource/name?fieldSelector=metadata.name=foo&labelSelector=foo=bar",
      "name",
      "watch",
      undefined,
    ],
  ];
  for (const [method, target, name, verb, labelSelector] of cases) {
    const info = parseRequestInfo(method, target);
    assert.equal(info.name, name, target);
    assert.equal(info.verb, verb, target);
    assert.equal(info.labelSelector, labelSelector, target);
  }
});

Deno.test("fieldSelector metadata.name rules", () => {
  const name = (method: string, target: string) =>
    parseRequestInfo(method, target).name;
  const base = "/api/v1/namespaces/ns/configmaps?fieldSelector=";
  assert.equal(name("GET", base + "metadata.name%3Dcm"), "cm");
  assert.equal(name("HEAD", base + "metadata.name%3D%3Dcm"), "cm");
  assert.equal(name("GET", base + "metadata.name!%3Dcm"), "");
  assert.equal(name("GET", base + "a%3Db,metadata.name%3Dcm"), "cm");
  // Terms are sorted before the first metadata.name match wins.
  assert.equal(name("GET", base + "metadata.name%3Db,metadata.name%3Da"), "a");
  assert.equal(name("GET", base + "metadata.name%3Da%5C,b"), "a,b");
  assert.equal(name("GET", base + "metadata.name%3Da%3Db"), ""); // bare "="
  assert.equal(name("GET", base + "metadata.name%3D.."), ""); // bad segment
  assert.equal(name("GET", base + "metadata.name%3Da%252Fb"), "");
  // Any ListOptions decoding error drops the name but still honours watch.
  const bad = base + "metadata.name%3Dcm&limit=x&watch=1";
  assert.equal(name("GET", bad), "");
  assert.equal(parseRequestInfo("GET", bad).verb, "watch");
  assert.equal(name("GET", base + "metadata.name%3Dcm&timeoutSeconds="), "");
  assert.equal(name("GET", base + "metadata.name%3Dcm&limit=-500"), "cm");
  assert.equal(
    name("GET", base + "metadata.name%3Dcm&limit=9223372036854775808"),
    "",
  );
  assert.equal(
    name("GET", base + "metadata.name%3Dcm&limit=%2B09223372036854775807"),
    "cm",
  );
  // A literal "+" in a query is a space, which ParseInt rejects.
  assert.equal(name("GET", base + "metadata.name%3Dcm&limit=+1"), "");
  // Not ported: Go also fails decoding on an invalid labelSelector (and so
  // drops this name); the apiserver then answers 400 anyway.
  assert.equal(
    name("GET", base + "metadata.name%3Dcm&labelSelector=a%20b"),
    "cm",
  );
  // Only GET/HEAD collections: not deletecollection, not the /watch/ prefix.
  const del = parseRequestInfo("DELETE", base + "metadata.name%3Dcm");
  assert.equal(del.verb, "deletecollection");
  assert.equal(del.name, "");
  assert.equal(
    name("GET", "/api/v1/watch/pods?fieldSelector=metadata.name%3Dp"),
    "",
  );
});

Deno.test("labelSelector extraction", () => {
  const ls = (method: string, target: string) =>
    parseRequestInfo(method, target).labelSelector;
  assert.equal(
    ls("GET", "/api/v1/pods?labelSelector=app%3Dweb%2Ctier+in+(a%2Cb)"),
    "app=web,tier in (a,b)",
  );
  assert.equal(
    ls("GET", "/api/v1/pods?watch=1&labelSelector=app=web"),
    "app=web",
  );
  assert.equal(ls("GET", "/api/v1/pods?labelSelector="), "");
  assert.equal(ls("GET", "/api/v1/pods"), undefined);
  assert.equal(ls("DELETE", "/api/v1/namespaces/ns/pods?labelSelector=a"), "a");
  assert.equal(
    ls("GET", "/api/v1/namespaces/ns/pods/p?labelSelector=a"),
    undefined,
  );
  assert.equal(
    ls("POST", "/api/v1/namespaces/ns/pods?labelSelector=a"),
    undefined,
  );
  assert.equal(ls("GET", "/api/v1/watch/pods?labelSelector=a"), undefined);
  assert.equal(ls("GET", "/healthz?labelSelector=a"), undefined);
  // url.ParseQuery skips pairs with bad escapes or semicolons.
  assert.equal(
    ls("GET", "/api/v1/pods?labelSelector=%zz&labelSelector=b"),
    "b",
  );
  assert.equal(
    ls("GET", "/api/v1/pods?labelSelector=a;b&labelSelector=c"),
    "c",
  );
});

Deno.test("absolute-form targets use the path", () => {
  const info = parseRequestInfo(
    "GET",
    "https://10.0.0.1:443/api/v1/pods?watch=1",
  );
  assert.equal(info.path, "/api/v1/pods");
  assert.equal(info.verb, "watch");
  assert.equal(info.resource, "pods");
  assert.equal(parseRequestInfo("GET", "http://host").isResourceRequest, false);
  assert.equal(parseRequestInfo("GET", "http://host?x=1").path, "");
});

Deno.test("malformed input yields a non-resource RequestInfo", () => {
  const cases: [string, string][] = [
    ["/api/v1/pods%", "/api/v1/pods%"],
    ["/api/v1/pods%2", "/api/v1/pods%2"],
    ["/api/v1/namespaces/%zz/pods", "/api/v1/namespaces/%zz/pods"],
    ["/api/v1/pods\u0000", "/api/v1/pods\u0000"],
    ["/api/v1/pods?x=\n", "/api/v1/pods"],
    ["api/v1/pods", "api/v1/pods"],
    [":/api/v1/pods", ":/api/v1/pods"],
    ["*", "*"],
  ];
  for (const [target, path] of cases) {
    const info = parseRequestInfo("GET", target);
    assert.equal(info.isResourceRequest, false, JSON.stringify(target));
    assert.equal(info.path, path);
    assert.equal(info.verb, "get");
  }
  // Invalid UTF-8 after decoding is replaced, not thrown.
  const utf = parseRequestInfo("GET", "/api/v1/namespaces/%ff/pods");
  assert.equal(utf.namespace, "\ufffd");
  // Non-strings from untyped callers.
  const untyped = parseRequestInfo(
    undefined as unknown as string,
    null as unknown as string,
  );
  assert.equal(untyped.isResourceRequest, false);
  assert.equal(untyped.verb, "");
});

Deno.test("absurd input is handled quickly", () => {
  const long = "/api/v1/" + "a/".repeat(200_000) + "?" +
    "fieldSelector=" + "%5C,".repeat(100_000) + "&limit=" +
    "9".repeat(100_000) +
    "&watch=1&" + "&".repeat(100_000);
  const start = performance.now();
  const info = parseRequestInfo("GET", long);
  assert.equal(info.resource, "a");
  assert.equal(
    parseRequestInfo("GET", "/" + "/".repeat(200_000) + "x").path.length,
    200_002,
  );
  assert.ok(performance.now() - start < 2000);
});

Deno.test("never throws on arbitrary input", () => {
  fc.assert(
    fc.property(
      fc.string(),
      fc.string({ unit: "binary" }),
      (method, target) => {
        const info = parseRequestInfo(method, target);
        assert.equal(typeof info.isResourceRequest, "boolean");
        assert.ok(Array.isArray(info.parts));
      },
    ),
    propertyRuns(2000),
  );
  fc.assert(
    fc.property(
      fc.array(
        fc.constantFrom(
          "api",
          "apis",
          "v1",
          "namespaces",
          "watch",
          "proxy",
          "status",
          "x",
          "",
          "%",
          "%2F",
          "?",
          "&",
          "=",
          "watch=0",
          "fieldSelector=metadata.name%3D",
        ),
      ),
      (segments) => {
        const info = parseRequestInfo("GET", "/" + segments.join("/"));
        if (info.isResourceRequest) assert.ok(info.apiVersion !== undefined);
      },
    ),
    propertyRuns(2000),
  );
});
