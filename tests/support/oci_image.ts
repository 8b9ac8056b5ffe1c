/**
 * Container images without a registry: a directory becomes a single-layer
 * OCI archive that `ctr -n k8s.io images import` loads under the name in
 * its index's `io.containerd.image.name` annotation. Used by the node tier
 * (pause, app and `mca` images); Pods then run them with
 * `imagePullPolicy: Never`.
 *
 * @module
 */

import { join } from "node:path";

/** What {@linkcode buildOciArchive} puts into the image config. */
export interface ImageSpec {
  /** Full reference, e.g. `localhost/mca:dev`. */
  name: string;
  /** Directory whose content becomes the image's root filesystem. */
  rootfs: string;
  /** Where the archive is written. */
  out: string;
  entrypoint: string[];
  /** `uid[:gid]`; default root. */
  user?: string;
  env?: string[];
  workingDir?: string;
}

/**
 * Writes an OCI image-layout tar for `spec` and returns its path. The layer
 * is an uncompressed tar with numeric root ownership, so the image is
 * reproducible from the same directory.
 */
export async function buildOciArchive(spec: ImageSpec): Promise<string> {
  const work = `${spec.out}.d`;
  await Deno.remove(work, { recursive: true }).catch(() => {});
  const blobs = join(work, "blobs", "sha256");
  await Deno.mkdir(blobs, { recursive: true });
  const layerTmp = join(work, "layer.tar");
  await run("tar", [
    "--numeric-owner",
    "--owner=0",
    "--group=0",
    "-C",
    spec.rootfs,
    "-cf",
    layerTmp,
    ".",
  ]);
  const layer = await Deno.readFile(layerTmp);
  const layerDigest = await sha256(layer);
  await Deno.rename(layerTmp, join(blobs, layerDigest));
  const config = json({
    architecture: "amd64",
    os: "linux",
    config: {
      Entrypoint: spec.entrypoint,
      User: spec.user ?? "0",
      Env: spec.env ?? ["PATH=/usr/local/bin:/usr/bin:/bin"],
      WorkingDir: spec.workingDir ?? "/",
    },
    rootfs: { type: "layers", diff_ids: [`sha256:${layerDigest}`] },
  });
  const configDigest = await writeBlob(blobs, config);
  const manifest = json({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: `sha256:${configDigest}`,
      size: config.length,
    },
    layers: [{
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      digest: `sha256:${layerDigest}`,
      size: layer.length,
    }],
  });
  const manifestDigest = await writeBlob(blobs, manifest);
  await Deno.writeFile(
    join(work, "index.json"),
    json({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: `sha256:${manifestDigest}`,
        size: manifest.length,
        annotations: {
          "io.containerd.image.name": spec.name,
          "org.opencontainers.image.ref.name": spec.name.split(":").pop(),
        },
      }],
    }),
  );
  await Deno.writeTextFile(
    join(work, "oci-layout"),
    '{"imageLayoutVersion":"1.0.0"}',
  );
  await run("tar", [
    "-C",
    work,
    "-cf",
    spec.out,
    "oci-layout",
    "index.json",
    "blobs",
  ]);
  await Deno.remove(work, { recursive: true });
  return spec.out;
}

/** Compiles one C file statically (`gcc -static -O2`) to `out`. */
export async function compileStatic(source: string, out: string) {
  await run("gcc", ["-static", "-O2", "-o", out, source]);
}

/** The absolute paths `ldd` lists for a dynamically linked binary. */
export async function sharedLibs(binary: string): Promise<string[]> {
  const out = await run("ldd", [binary]);
  return [...out.matchAll(/(\/\S+\.so[.\d]*)/g)].map((m) => m[1]);
}

/** Runs a command and throws with its stderr when it fails. */
export async function run(cmd: string, args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (code !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited ${code}: ${dec.decode(stderr).trim()}`,
    );
  }
  return dec.decode(stdout);
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return Array.from(new Uint8Array(digest))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function writeBlob(blobs: string, bytes: Uint8Array): Promise<string> {
  const digest = await sha256(bytes);
  await Deno.writeFile(join(blobs, digest), bytes);
  return digest;
}
