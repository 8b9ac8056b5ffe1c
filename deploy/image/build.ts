/**
 * `deno task image`: builds the node tier's `localhost/mca:dev` OCI archive
 * from this checkout, without a registry and without `deno compile` (which
 * needs a download). The image holds the running deno binary and its shared
 * libraries, the checkout's main.ts, lib/, deno.json and deno.lock, a
 * DENO_DIR with every npm dependency cached, and a static C launcher at
 * /usr/local/bin/mca (deploy/image/mca_launcher.c). User 65532.
 *
 * Usage: deno task image [out.tar]   (default tmp/image/mca-dev.tar)
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  buildOciArchive,
  compileStatic,
  run,
  sharedLibs,
} from "../../tests/support/oci_image.ts";

export const MCA_IMAGE = "localhost/mca:dev";
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Builds the archive at `out` and returns its path. */
export async function buildMcaImage(out: string): Promise<string> {
  const work = `${resolve(out)}.build`;
  const rootfs = join(work, "rootfs");
  await Deno.remove(work, { recursive: true }).catch(() => {});
  for (const d of ["usr/local/bin", "app", "tmp", "deno-dir"]) {
    await Deno.mkdir(join(rootfs, d), { recursive: true });
  }
  await Deno.chmod(join(rootfs, "tmp"), 0o1777);
  const deno = Deno.execPath();
  await Deno.copyFile(deno, join(rootfs, "usr/local/bin/deno"));
  for (const lib of await sharedLibs(deno)) {
    await Deno.mkdir(join(rootfs, dirname(lib)), { recursive: true });
    await Deno.copyFile(lib, join(rootfs, lib));
  }
  await compileStatic(
    join(ROOT, "deploy/image/mca_launcher.c"),
    join(rootfs, "usr/local/bin/mca"),
  );
  for (const f of ["main.ts", "deno.json", "deno.lock"]) {
    await Deno.copyFile(join(ROOT, f), join(rootfs, "app", f));
  }
  await run("cp", ["-a", join(ROOT, "lib"), join(rootfs, "app", "lib")]);
  // The npm packages main.ts imports, cached where the launcher looks.
  const cache = new Deno.Command(deno, {
    args: ["cache", "--config=deno.json", "--frozen", "main.ts"],
    cwd: join(rootfs, "app"),
    env: { DENO_DIR: join(rootfs, "deno-dir") },
    stdin: "null",
  });
  const cached = await cache.output();
  if (!cached.success) {
    throw new Error(
      `deno cache main.ts failed: ${new TextDecoder().decode(cached.stderr)}`,
    );
  }
  await run("chmod", ["-R", "a+rX", rootfs]);
  await buildOciArchive({
    name: MCA_IMAGE,
    rootfs,
    out: resolve(out),
    entrypoint: ["/usr/local/bin/mca"],
    user: "65532:65532",
    env: ["PATH=/usr/local/bin", "DENO_DIR=/deno-dir", "HOME=/tmp"],
  });
  await Deno.remove(work, { recursive: true });
  return resolve(out);
}

if (import.meta.main) {
  const out = Deno.args[0] ?? join(ROOT, "tmp/image/mca-dev.tar");
  await Deno.mkdir(dirname(resolve(out)), { recursive: true });
  console.log(await buildMcaImage(out));
}
