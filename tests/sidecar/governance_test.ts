import assert from "node:assert/strict";
import { join } from "node:path";
import { appCall, startFixture } from "../support/sidecar_fixture.ts";
import { calls, untilLogged } from "../support/multicluster.ts";

const POLICY = `apiVersion: mca.io/v1alpha1
kind: Policy
rules:
  - {name: no-secrets, effect: deny, resources: [secrets]}
`;

Deno.test("governance: --policy refuses with 403, logs the rule, reloads and keeps the last good version", async () => {
  const f = await startFixture({ policyYaml: POLICY });
  try {
    const refused = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/other/secrets/s",
    );
    assert.equal(refused.status, 403);
    assert.equal(JSON.parse(refused.text).reason, "Forbidden");
    assert.ok(
      !refused.text.includes("no-secrets"),
      "the rule is not told to the app",
    );
    assert.equal(calls(f).at(-1).policyRule, "no-secrets");
    assert.equal(
      (await appCall(f, "GET", "/api/v1/namespaces/other/configmaps/x")).status,
      200,
    );
    const file = join(f.dir, "policy.yaml");
    await Deno.writeTextFile(
      `${file}.new`,
      "apiVersion: mca.io/v1alpha1\nkind: Policy\nmode: nope\n",
    );
    await Deno.rename(`${file}.new`, file);
    await untilLogged(
      f,
      (l) => l.msg === "policy rejected; keeping the previous one",
    );
    assert.equal(
      (await appCall(f, "GET", "/api/v1/namespaces/other/secrets/s")).status,
      403,
    );
    await Deno.writeTextFile(
      `${file}.new`,
      "apiVersion: mca.io/v1alpha1\nkind: Policy\nmode: audit\n" +
        POLICY.split("\n").slice(2).join("\n"),
    );
    await Deno.rename(`${file}.new`, file);
    await untilLogged(f, (l) => l.msg === "policy loaded");
    const audited = await appCall(
      f,
      "GET",
      "/api/v1/namespaces/other/secrets/s",
    );
    assert.notEqual(audited.status, 403, "audit mode records, never refuses");
    assert.equal(calls(f).at(-1).policyRule, "no-secrets");
  } finally {
    await f.close();
  }
});

Deno.test("governance: an invalid policy file stops the start with file:line", async () => {
  await assert.rejects(
    () =>
      startFixture({
        policyYaml:
          "apiVersion: mca.io/v1alpha1\nkind: Policy\nrules:\n  - effect: maybe\n",
      }),
    /policy\.yaml:4: effect must be one of allow, deny/,
  );
});
