import assert from "node:assert/strict";
import { openAudit } from "../../lib/audit/setup.ts";
import { parseRequestInfo } from "../../lib/kube/request_info.ts";

const log = () => {};

/** A new directory under tmp/, removed when the test's `using` ends. */
async function dir(): Promise<AsyncDisposable & { path: string }> {
  const path =
    new URL(`../../tmp/audit_setup_${crypto.randomUUID()}/`, import.meta.url)
      .pathname;
  await Deno.mkdir(path, { recursive: true });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

Deno.test("audit setup: no flag, no audit", async () => {
  assert.equal(await openAudit({}, { log }), undefined);
});

Deno.test("audit setup: inconsistent flags are explained", async () => {
  await assert.rejects(
    openAudit({ logPath: "-" }, { log }),
    /--audit-log and --audit-webhook-url need --audit-policy FILE/,
  );
  await assert.rejects(
    openAudit({ policyFile: "p.yaml" }, { log }),
    /--audit-policy needs a backend: --audit-log PATH/,
  );
  await assert.rejects(
    openAudit({ policyFile: "/nonexistent/p.yaml", logPath: "-" }, { log }),
    /cannot read --audit-policy \/nonexistent\/p\.yaml/,
  );
  await using tmp = await dir();
  const d = tmp.path;
  await Deno.writeTextFile(
    `${d}p.yaml`,
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n",
  );
  await assert.rejects(
    openAudit({ policyFile: `${d}p.yaml`, webhookUrl: "ftp://x" }, { log }),
    /--audit-webhook-url must be an http:\/\/ or https:\/\/ URL/,
  );
});

Deno.test("audit setup: policy + file backend record calls; counters report them", async () => {
  await using tmp = await dir();
  const d = tmp.path;
  await Deno.writeTextFile(
    `${d}p.yaml`,
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n",
  );
  const audit = await openAudit({
    policyFile: `${d}p.yaml`,
    logPath: `${d}audit.log`,
    logMaxSizeMB: 1,
    logMaxBackups: 0,
  }, { log });
  assert.ok(audit);
  audit.observer.start({
    id: 1,
    info: parseRequestInfo("GET", "/api/v1/pods"),
    method: "GET",
    startedAt: performance.now(),
    receivedAt: new Date(),
    upgrade: false,
  }).end({
    status: 200,
    bytesIn: 0,
    bytesOut: 0,
    durationMs: 1,
    cluster: "local",
    outcomes: [],
  });
  await audit.close();
  assert.deepEqual(audit.counters(), { written: 2, dropped: 0, errors: 0 });
  const lines = (await Deno.readTextFile(`${d}audit.log`)).trimEnd().split(
    "\n",
  );
  assert.deepEqual(lines.map((l) => JSON.parse(l).stage), [
    "RequestReceived",
    "ResponseComplete",
  ]);
});
