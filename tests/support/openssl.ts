/**
 * The openssl CLI as an independent reader of the certificates MCA writes
 * (Debian's openssl, on every machine of this kind).
 *
 * @module
 */

import assert from "node:assert/strict";

/** `openssl x509 -text` of a PEM certificate: an independent DER reader. */
export async function opensslText(pem: string): Promise<string> {
  const out = await opensslRun(["x509", "-noout", "-text"], pem);
  assert.equal(out.code, 0, out.stderr);
  return out.stdout;
}

export async function opensslRun(
  args: string[],
  stdin = "",
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command("openssl", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  const d = new TextDecoder();
  return {
    code: out.code,
    stdout: d.decode(out.stdout),
    stderr: d.decode(out.stderr),
  };
}
