/**
 * The log backend: one `Event` JSON per line, to stdout (`-`) or to a file
 * rotated by size like kube-apiserver's `--audit-log-maxsize` /
 * `--audit-log-maxbackup` (backups named `<name>-<UTC time>.<ext>`, the
 * oldest removed first). A path that is not a regular file (a FIFO,
 * `/dev/stderr`) is written to and never rotated.
 *
 * Lines are batched and written asynchronously, so a slow disk delays
 * audit lines, never API calls. A file that cannot be opened or written
 * (read-only volume, disk full) loses the pending lines — counted in
 * `counters.dropped` — and is reported once on the log, and again when it
 * recovers; the proxy keeps serving.
 *
 * @module
 */

import { formatEvent, type LogSink } from "../observe/log.ts";
import { type AuditBackend, newCounters } from "./backend.ts";
import { LineBuffer } from "../observe/line_buffer.ts";

/** Options of {@linkcode openLogBackend}. */
export interface LogBackendOptions {
  /** Rotate before the file would exceed this many bytes (default 100 MiB). */
  maxSizeBytes?: number;
  /** Old files to keep; 0 keeps all (default 3). */
  maxBackups?: number;
  /**
   * How long lines may wait to be batched (default 50 ms): one write per
   * batch, not per event, is what keeps audit cheap under load.
   */
  intervalMs?: number;
  /** Lines waiting beyond this many bytes are dropped (default 16 MiB). */
  maxPendingBytes?: number;
  /** Where problems are reported (MCA's own log). */
  log: LogSink;
}

/** Opens the log backend for `path` (`-` = stdout). Never throws. */
export function openLogBackend(
  path: string,
  options: LogBackendOptions,
): AuditBackend {
  const counters = newCounters();
  const maxPending = options.maxPendingBytes ?? 16 << 20;
  const writer = path === "-" ? stdoutWriter() : fileWriter(path, options);
  const health = writeHealth(path, options.log);
  const pending = new LineBuffer();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let draining: Promise<void> | undefined;

  async function drain(): Promise<void> {
    while (pending.lines > 0) {
      const batch = pending.take();
      try {
        for (const chunk of batch.chunks) await writer.write(chunk);
        counters.written += batch.lines;
        health.wrote();
      } catch (error) {
        counters.dropped += batch.lines;
        counters.errors++;
        health.failed(error as Error);
      }
      pending.recycle(batch.chunks);
    }
  }
  function kick(): Promise<void> {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (!draining) {
      draining = drain().finally(() => draining = undefined);
    }
    return draining;
  }
  async function flush(): Promise<void> {
    while (pending.lines > 0 || draining) await kick();
  }
  return {
    counters,
    emit(json) {
      if (pending.bytes + json.length > maxPending) {
        counters.dropped++;
        return;
      }
      pending.push(json);
      if (timer === undefined && !draining) {
        timer = setTimeout(kick, options.intervalMs ?? 50);
      }
    },
    flush,
    async close() {
      await flush();
      writer.close();
    },
  };
}

/**
 * Reports on MCA's own log when the audit log stops being writable, and when
 * it is writable again: once per change, not once per failed batch.
 */
function writeHealth(
  path: string,
  log: LogSink,
): { wrote(): void; failed(error: Error): void } {
  let failing = false;
  return {
    wrote() {
      if (!failing) return;
      failing = false;
      log(formatEvent("info", "audit log writable again", { path }));
    },
    failed(error) {
      if (failing) return;
      failing = true;
      log(
        formatEvent("error", "audit log not writable; events dropped", {
          path,
          error: error.message,
        }),
      );
    },
  };
}

interface Writer {
  write(bytes: Uint8Array): Promise<void>;
  close(): void;
}

function stdoutWriter(): Writer {
  return {
    write(bytes) {
      let written = 0;
      while (written < bytes.length) {
        written += Deno.stdout.writeSync(bytes.subarray(written));
      }
      return Promise.resolve();
    },
    close() {},
  };
}

function fileWriter(path: string, options: LogBackendOptions): Writer {
  const maxSize = options.maxSizeBytes ?? 100 << 20;
  const maxBackups = options.maxBackups ?? 3;
  let file: Deno.FsFile | undefined;
  let size = 0;
  // only a regular file is rotated: renaming a device or a pipe given as
  // the log (/dev/null, /dev/stderr, a FIFO) would put a file in its place
  let regular = true;
  async function open(): Promise<Deno.FsFile> {
    if (file) return file;
    file = await Deno.open(path, { create: true, append: true, write: true });
    const stat = await file.stat();
    size = stat.size;
    regular = stat.isFile;
    return file;
  }
  return {
    async write(bytes) {
      try {
        let f = await open();
        if (regular && size > 0 && size + bytes.length > maxSize) {
          f.close();
          file = undefined;
          await rotate(path, maxBackups);
          f = await open();
        }
        let written = 0;
        while (written < bytes.length) {
          written += await f.write(bytes.subarray(written));
        }
        size += bytes.length;
      } catch (error) {
        file?.close();
        file = undefined;
        throw error;
      }
    },
    close() {
      file?.close();
      file = undefined;
    },
  };
}

/** `dir/audit.log` → `dir/audit-2026-01-02T03-04-05.678.log` (lumberjack). */
export function backupName(path: string, now: Date): string {
  const { dir, stem, ext } = splitPath(path);
  const stamp = now.toISOString().slice(0, 23).replace(/:/g, "-");
  return `${dir}${stem}-${stamp}${ext}`;
}

function splitPath(path: string): { dir: string; stem: string; ext: string } {
  const slash = path.lastIndexOf("/");
  const dir = path.slice(0, slash + 1);
  const base = path.slice(slash + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0
    ? { dir, stem: base.slice(0, dot), ext: base.slice(dot) }
    : { dir, stem: base, ext: "" };
}

async function rotate(path: string, maxBackups: number): Promise<void> {
  let target = backupName(path, new Date());
  for (let n = 1; await exists(target); n++) {
    target = backupName(path, new Date(Date.now() + n));
  }
  await Deno.rename(path, target);
  if (maxBackups <= 0) return;
  const { dir, stem, ext } = splitPath(path);
  const backups: string[] = [];
  for await (const entry of Deno.readDir(dir || ".")) {
    const n = entry.name;
    if (
      entry.isFile && n.startsWith(`${stem}-`) && n.endsWith(ext) &&
      n !== `${stem}${ext}`
    ) {
      backups.push(n);
    }
  }
  backups.sort(); // the timestamp sorts as text
  for (
    const old of backups.slice(0, Math.max(0, backups.length - maxBackups))
  ) {
    await Deno.remove(`${dir}${old}`).catch(() => {});
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
