import assert from "node:assert/strict";
import {
  clusterTarget,
  isExactRead,
  listRefusal,
  mapTarget,
  queryParam,
  requestedVersions,
  snapshotQuery,
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

Deno.test("fanout request: Exact is an explicit match, or limit + a version with no match (kube-apiserver's legacy rule)", () => {
  const rv = encodeResourceVersion({ east: "7", west: "12" });
  assert.ok(isExactRead(`${LIST}?resourceVersion=${rv}&limit=500`));
  assert.ok(
    isExactRead(`${LIST}?resourceVersion=${rv}&resourceVersionMatch=Exact`),
  );
  assert.ok(
    !isExactRead(
      `${LIST}?resourceVersion=${rv}&limit=5&resourceVersionMatch=NotOlderThan`,
    ),
  );
  assert.ok(!isExactRead(`${LIST}?resourceVersion=${rv}`), "no limit");
  assert.ok(!isExactRead(`${LIST}?resourceVersion=0&limit=500`), '"0" is any');
  assert.ok(!isExactRead(`${LIST}?limit=500`), "no version");
  assert.ok(!isExactRead(`${LIST}?limit=5&continue=t`), "a later page");
});

Deno.test("fanout request: an Exact LIST needs a version for every cluster (else 410)", () => {
  const clusters = ["east", "west"];
  const both = encodeResourceVersion({ east: "7", west: "12" });
  const one = encodeResourceVersion({ east: "7" });
  assert.equal(
    listRefusal(`${LIST}?resourceVersion=${both}&limit=5`, clusters),
    undefined,
  );
  assert.equal(
    listRefusal(`${LIST}?resourceVersion=${one}`, clusters),
    undefined,
    "NotOlderThan",
  );
  assert.match(
    listRefusal(`${LIST}?resourceVersion=${one}&limit=5`, clusters) ?? "",
    /no version of cluster west; list again/,
  );
  assert.match(
    listRefusal(
      `${LIST}?resourceVersion=123&resourceVersionMatch=Exact`,
      clusters,
    ) ?? "",
    /not issued by mca/,
  );
  assert.equal(listRefusal(`${LIST}?resourceVersion=123`, clusters), undefined);
});

Deno.test("fanout request: a snapshot is the app's entry when Exact, else a limit=1 LIST no older than it", () => {
  const rv = encodeResourceVersion({ east: "7", west: "12" });
  assert.deepEqual(
    snapshotQuery(`${LIST}?resourceVersion=${rv}&limit=5`, "west"),
    {
      version: "12",
    },
  );
  assert.deepEqual(
    snapshotQuery(
      `${LIST}?resourceVersion=${rv}&limit=5&resourceVersionMatch=NotOlderThan`,
      "west",
    ),
    {
      params: {
        limit: "1",
        continue: undefined,
        resourceVersion: "12",
        resourceVersionMatch: "NotOlderThan",
      },
    },
  );
  for (const any of ["", "&resourceVersion=0"]) {
    assert.deepEqual(snapshotQuery(`${LIST}?limit=500${any}`, "west"), {
      params: {
        limit: "1",
        continue: undefined,
        resourceVersion: undefined,
        resourceVersionMatch: undefined,
      },
    }, "the most recent state (a quorum read of one item)");
  }
});
