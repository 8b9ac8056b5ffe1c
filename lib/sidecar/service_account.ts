/**
 * The two service-account directories MCA deals with.
 *
 * The real one (the kubelet's projected volume, mounted only into `mca`) holds
 * the token `mca` authenticates with; the kubelet rotates it by writing a new
 * timestamped directory and swapping the `..data` symlink in one rename.
 * {@link RealServiceAccount} notices that swap on the next request and never
 * hands out a token older than the file.
 *
 * The app-facing one is written by {@link writeAppServiceAccount}: MCA's CA as
 * `ca.crt`, a fixed placeholder `token`, the Pod's `namespace`. Every file is
 * replaced atomically so an app starting at any moment reads whole files.
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "./files.ts";

/**
 * What apps find in their `token` file. Non-empty (client-go and the Python
 * client refuse an empty token file), no trailing newline (several SDKs put
 * the file verbatim into a header), and obviously not a credential.
 */
export const PLACEHOLDER_TOKEN = "mca-placeholder-token";

/**
 * The real service-account files cannot be used. Its message names the
 * file and what is wrong with it, never the file's content, so it may be
 * logged.
 */
export class ServiceAccountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ServiceAccountError";
  }
}

/** The files of a service-account directory, as read at one instant. */
export interface ServiceAccountFiles {
  token: string;
  caPem: string;
}

/**
 * The real service-account directory, re-read whenever the kubelet swaps it.
 *
 * Checking costs one `readlink` (kubelet layout) or one `stat` (a plain
 * directory, as in local development) per call.
 */
export class RealServiceAccount {
  readonly dir: string;
  #version = "";
  #files: ServiceAccountFiles | undefined;
  // joined once: the link is read on every call (a join cost 0.2 µs of 0.7)
  readonly #link: string;
  readonly #token: string;

  constructor(dir: string) {
    this.dir = dir;
    this.#link = join(dir, "..data");
    this.#token = join(dir, "token");
  }

  /** The current token and CA; throws with the path if they are unreadable. */
  current(): ServiceAccountFiles {
    const version = this.#readVersion();
    if (this.#files === undefined || version !== this.#version) {
      this.#files = this.#readFiles();
      // Re-check: if the swap happened while reading, read again next time.
      this.#version = this.#readVersion() === version ? version : "";
    }
    return this.#files;
  }

  /** The namespace file of the real service account, trimmed. */
  namespace(): string {
    return Deno.readTextFileSync(join(this.dir, "namespace")).trim();
  }

  #readVersion(): string {
    try {
      return "link:" + Deno.readLinkSync(this.#link);
    } catch {
      try {
        const s = Deno.statSync(this.#token);
        return `stat:${s.ino}:${s.mtime?.getTime()}:${s.size}`;
      } catch {
        return "";
      }
    }
  }

  #readFiles(): ServiceAccountFiles {
    const tokenPath = this.#token;
    let token: string;
    try {
      token = Deno.readTextFileSync(tokenPath).trim();
    } catch (error) {
      throw new ServiceAccountError(
        `cannot read the service-account token ${tokenPath}: ${
          (error as Error).message
        }`,
      );
    }
    if (token === "") {
      throw new ServiceAccountError(
        `the service-account token ${tokenPath} is empty`,
      );
    }
    // A bearer token is visible ASCII (RFC 6750 b64token and JWTs alike).
    // Anything else would break the header and could be echoed in an error:
    // say which file is bad, never what is in it.
    if (!/^[\x21-\x7e]+$/.test(token)) {
      throw new ServiceAccountError(
        `the service-account token ${tokenPath} holds characters a bearer token cannot (control characters, spaces or non-ASCII); check what writes that file`,
      );
    }
    let caPem = "";
    try {
      caPem = Deno.readTextFileSync(join(this.dir, "ca.crt"));
    } catch {
      caPem = "";
    }
    return { token, caPem };
  }
}

/** What the apps' service-account directory must contain. */
export interface AppServiceAccount {
  caPem: string;
  namespace: string;
}

/**
 * Writes `ca.crt`, `token` and `namespace` for the apps, each atomically.
 *
 * `ca.crt` is written last: SDKs that find a CA assume the directory is
 * complete.
 */
export async function writeAppServiceAccount(
  dir: string,
  files: AppServiceAccount,
): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true }); // in a Pod: the emptyDir, present
  } catch (error) {
    throw new Error(
      `cannot create ${dir}: ${
        (error as Error).message
      }; pass a writable --mca-sa-dir`,
    );
  }
  await writeFileAtomic(join(dir, "namespace"), files.namespace);
  await writeFileAtomic(join(dir, "token"), PLACEHOLDER_TOKEN);
  await writeFileAtomic(join(dir, "ca.crt"), files.caPem);
}
