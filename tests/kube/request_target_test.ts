import assert from "node:assert/strict";
import fc from "fast-check";
import { refuseTarget } from "../../lib/kube/request_target.ts";

Deno.test("request target: API calls pass, ambiguous targets are refused", () => {
  for (
    const ok of [
      "/api/v1/pods",
      "/api/v1/namespaces/a/pods?watch=1&labelSelector=a%3Db",
      "/apis/apps/v1/namespaces/x/deployments/d/scale",
      "/version",
      "/openapi/v3/apis/apps/v1?hash=abc",
      "/api/v1/namespaces/a/configmaps/x.y..z",
      "/api/v1/namespaces/a/pods?fieldSelector=metadata.name%3D..",
    ]
  ) assert.equal(refuseTarget(ok), undefined, ok);
  for (
    const bad of [
      "https://evil.example/api/v1/pods",
      "evil.example:443",
      "*",
      "/api/v1/namespaces/%2e%2e/pods",
      "/version/%2E%2e/api/v1/namespaces/ns1/pods",
      "/api/v1/namespaces/../pods",
      "/api/v1/./pods",
      "/api/v1/namespaces/a%2Fb/pods",
      "/api/v1/namespaces/a%5cb/pods",
      "/api/v1\\namespaces",
      "/api/v1/pods#x",
    ]
  ) assert.ok(refuseTarget(bad), bad);
});

Deno.test("request target: what passes is what WHATWG URL parsing keeps (property)", () => {
  // Independent oracle: the URL parser fetch uses. A target MCA forwards
  // must reach the upstream with the same path it was decided on.
  const segment = fc.stringMatching(/^[a-zA-Z0-9._%~-]{0,8}$/);
  fc.assert(
    fc.property(fc.array(segment, { maxLength: 6 }), (segments) => {
      const target = "/" + segments.join("/");
      if (refuseTarget(target) !== undefined) return;
      const parsed = new URL("https://upstream.test" + target).pathname;
      assert.equal(parsed, target);
    }),
    { seed: 42, numRuns: 5000 },
  );
});
