import assert from "node:assert/strict";
import { join } from "node:path";
import {
  PLACEHOLDER_TOKEN,
  RealServiceAccount,
  writeAppServiceAccount,
} from "../../lib/sidecar/service_account.ts";
import { writeProjectedVolume } from "../support/cluster.ts";

const TMP = new URL("../../tmp/", import.meta.url).pathname;

async function tempDir(prefix: string): Promise<string> {
  await Deno.mkdir(TMP, { recursive: true });
  return await Deno.makeTempDir({ dir: TMP, prefix });
}

Deno.test("real SA: a kubelet ..data swap is seen by the next call", async () => {
  const dir = await tempDir("real-sa-");
  try {
    await writeProjectedVolume(dir, {
      token: "one\n",
      "ca.crt": "CA1",
      namespace: "ns\n",
    });
    const sa = new RealServiceAccount(dir);
    assert.deepEqual(sa.current(), { token: "one", caPem: "CA1" });
    assert.equal(sa.namespace(), "ns");
    await writeProjectedVolume(dir, {
      token: "two",
      "ca.crt": "CA2",
      namespace: "ns",
    });
    assert.deepEqual(sa.current(), { token: "two", caPem: "CA2" });
    for (let i = 3; i < 30; i++) {
      await writeProjectedVolume(dir, {
        token: `t${i}`,
        "ca.crt": "CA2",
        namespace: "ns",
      });
      assert.equal(sa.current().token, `t${i}`, "never a stale token");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("real SA: a plain directory (local development) is re-read on change", async () => {
  const dir = await tempDir("plain-sa-");
  try {
    await Deno.writeTextFile(join(dir, "token"), "a");
    const sa = new RealServiceAccount(dir);
    assert.equal(sa.current().token, "a");
    assert.equal(sa.current().caPem, "");
    await Deno.writeTextFile(join(dir, "token.new"), "bb");
    await Deno.rename(join(dir, "token.new"), join(dir, "token"));
    assert.equal(sa.current().token, "bb");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("real SA: missing or empty token is a clear error", async () => {
  const dir = await tempDir("bad-sa-");
  try {
    const sa = new RealServiceAccount(dir);
    assert.throws(() => sa.current(), /cannot read the service-account token/);
    await Deno.writeTextFile(join(dir, "token"), "\n");
    assert.throws(() => sa.current(), /is empty/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("app SA: placeholder token, CA and namespace, no newline", async () => {
  const dir = await tempDir("app-sa-");
  try {
    await writeAppServiceAccount(dir, { caPem: "PEM", namespace: "team" });
    assert.equal(
      await Deno.readTextFile(join(dir, "token")),
      PLACEHOLDER_TOKEN,
    );
    assert.equal(await Deno.readTextFile(join(dir, "ca.crt")), "PEM");
    assert.equal(await Deno.readTextFile(join(dir, "namespace")), "team");
    assert.ok(PLACEHOLDER_TOKEN.length > 0 && !/\s/.test(PLACEHOLDER_TOKEN));
    for (const name of ["token", "ca.crt", "namespace"]) {
      const mode = (await Deno.stat(join(dir, name))).mode! & 0o777;
      assert.equal(mode, 0o644, `${name} must be readable by the app's user`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
