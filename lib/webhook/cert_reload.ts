/**
 * Follows the webhook's serving certificate on disk. A mounted
 * `kubernetes.io/tls` Secret is replaced by the kubelet's `..data` symlink
 * swap (cert-manager renewals arrive that way), so the files are re-read on a
 * short interval and compared by content: that sees a swap whatever inotify
 * reports for symlinks.
 *
 * @module
 */

import { readFileSync } from "node:fs";

/** A key pair as PEM text. */
export interface KeyPair {
  cert: string;
  key: string;
}

/** Reads both files; the error names the file and what to mount there. */
export function readKeyPair(certFile: string, keyFile: string): KeyPair {
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch (error) {
      throw new Error(
        `cannot read the webhook's ${what} ${file} (${
          (error as Error).message
        }): mount a kubernetes.io/tls Secret and pass --tls-cert/--tls-key`,
      );
    }
  };
  return { cert: read(certFile, "certificate"), key: read(keyFile, "key") };
}

/**
 * Calls `onChange` with the new pair whenever either file's content changes;
 * returns a function that stops watching. A half-written pair that fails to
 * load is reported to `onError` and retried on the next tick.
 */
export function watchKeyPair(
  files: { certFile: string; keyFile: string; intervalMs?: number },
  handlers: {
    onChange: (pair: KeyPair) => void;
    onError: (error: Error) => void;
  },
): () => void {
  let last = readKeyPair(files.certFile, files.keyFile);
  const timer = setInterval(() => {
    try {
      const next = readKeyPair(files.certFile, files.keyFile);
      if (next.cert === last.cert && next.key === last.key) return;
      handlers.onChange(next);
      last = next;
    } catch (error) {
      handlers.onError(error as Error);
    }
  }, files.intervalMs ?? 1000);
  return () => clearInterval(timer);
}
