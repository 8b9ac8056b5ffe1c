import assert from "node:assert/strict";
import { metricsFlags } from "../../lib/sidecar/metrics_endpoint.ts";
import { METRICS_PORT } from "../../lib/inject/names.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

Deno.test("metrics flags: defaults to 0.0.0.0:METRICS_PORT, 0 turns metrics off", () => {
  assert.deepEqual(metricsFlags(undefined, undefined), {
    hostname: "0.0.0.0",
    port: METRICS_PORT,
  });
  assert.deepEqual(metricsFlags("[::1]", "9999"), {
    hostname: "::1",
    port: 9999,
  });
  assert.deepEqual(metricsFlags("127.0.0.1", "0"), {});
  assert.throws(
    () => metricsFlags(undefined, "-1"),
    /--metrics-port must be 0-65535/,
  );
  assert.throws(() => metricsFlags(undefined, "65536"), /--metrics-port/);
  assert.throws(() => metricsFlags(undefined, "http"), /--metrics-port/);
  assert.throws(() => metricsFlags(" ", undefined), /--metrics-listen/);
});

Deno.test("metrics flags: mca exits 2 naming the flag for a bad port", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--metrics-port=abc"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.match(
    new TextDecoder().decode(out.stderr),
    /--metrics-port must be 0-65535/,
  );
});
