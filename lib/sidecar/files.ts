/**
 * Atomic file writes.
 *
 * Apps read the files MCA writes (their `ca.crt`, `token`, `namespace`) at
 * any moment, possibly while `mca` restarts: a reader must see either the
 * old whole file or the new whole file, never a half-written one. Writing a
 * temporary file in the same directory and renaming it over the target gives
 * exactly that on every POSIX filesystem.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/** Options of {@link writeFileAtomic}. */
export interface WriteOptions {
  /** File mode of the result; 0o644 (readable by the app's user) by default. */
  mode?: number;
}

/** Replaces `path` with `data` in one step (temp file + rename). */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteOptions = {},
): Promise<void> {
  const suffix = crypto.getRandomValues(new Uint32Array(1))[0].toString(16);
  const temp = join(dirname(path), `.${basename(path)}.${suffix}.tmp`);
  const mode = options.mode ?? 0o644;
  try {
    if (typeof data === "string") {
      await Deno.writeTextFile(temp, data, { mode, createNew: true });
    } else {
      await Deno.writeFile(temp, data, { mode, createNew: true });
    }
    await Deno.chmod(temp, mode); // the umask may have narrowed it
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw new Error(
      `cannot write ${path}: ${(error as Error).message}; ` +
        `check that the directory exists and is writable by mca`,
    );
  }
}
