import assert from "node:assert/strict";
import {
  clusterTarget,
  mapTarget,
  queryParam,
  requestedVersions,
  versionFor,
} from "../../lib/multicluster/fanout_request.ts";
import { encodeResourceVersion } from "../../lib/kube/resource_version.ts";

const LIST = "/api/v1/namespaces/a/configmaps";

Deno.test("fanout request: a composite resourceVersion round-trips to per-cluster versions", () => {
  const rv = encodeResourceVersion({ west: "12", east: "7" });
  const url = `${LIST}?watch=1&resourceVersion=${rv}`;
  assert.deepEqual(requestedVersions(url), { east: "7", west: "12" });
  assert.equal(versionFor(url, "east"), "7");
  assert.equal(versionFor(url, "west"), "12");
  assert.equal(versionFor(url, "north"), undefined, "not in the composite");
});

Deno.test("fanout request: none or 0 is any; a plain or garbage version is invalid", () => {
  assert.equal(requestedVersions(LIST), "any");
  assert.equal(requestedVersions(`${LIST}?resourceVersion=`), "any");
  assert.equal(requestedVersions(`${LIST}?resourceVersion=0`), "any");
  assert.equal(versionFor(`${LIST}?resourceVersion=0`, "east"), "0");
  assert.equal(versionFor(LIST, "east"), undefined);
  for (const bad of ["12345", "mca.", "mca.!!!", "mca.WzFd"]) {
    const url = `${LIST}?resourceVersion=${bad}`;
    assert.equal(requestedVersions(url), "invalid", bad);
    assert.equal(versionFor(url, "east"), undefined, bad);
  }
});

Deno.test("fanout request: a cluster's target sets, drops and maps parameters", () => {
  const url = `${LIST}?limit=5&resourceVersion=mca.x&continue=abc`;
  assert.equal(
    clusterTarget(url, { resourceVersion: "7", continue: undefined }),
    `${LIST}?limit=5&resourceVersion=7`,
  );
  assert.equal(
    clusterTarget(`${LIST}?resourceVersion=0`, { resourceVersion: "" }),
    LIST,
    "an empty value removes the parameter, and a bare ? is dropped",
  );
  assert.equal(
    clusterTarget(url, { resourceVersion: undefined, continue: "c2" }, {
      app: "a",
      remote: "b",
    }),
    "/api/v1/namespaces/b/configmaps?limit=5&continue=c2",
  );
  assert.equal(mapTarget(LIST), LIST);
  assert.equal(
    mapTarget(`${LIST}/x`, { app: "a", remote: "b" }),
    "/api/v1/namespaces/b/configmaps/x",
  );
  assert.equal(queryParam(url, "limit"), "5");
  assert.equal(queryParam(url, "watch"), undefined);
});
