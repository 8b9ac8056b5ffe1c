/**
 * Log and audit lines encoded to UTF-8 as they are emitted, into reused
 * chunks of bytes, until a batch is written.
 *
 * Holding the strings for the batch interval (10 ms for the log, 50 ms for
 * audit) made many of them survive a young-generation collection (copied,
 * then promoted), and joining them flattened each again: measured with a
 * Metadata-level audit policy, writing the file cost more per call than
 * building the events. Bytes in an `ArrayBuffer` are not copied by the
 * collector, and a chunk is written as it is.
 *
 * @module
 */

const encoder = new TextEncoder();
const NEWLINE = 10;

/** Size of one chunk; a longer line gets a chunk of its own. */
export const CHUNK_BYTES = 256 * 1024;

/** Lines waiting to be written, as chunks of bytes. */
export class LineBuffer {
  #full: Uint8Array[] = [];
  #current: Uint8Array | undefined;
  #used = 0;
  #lines = 0;
  #bytes = 0;
  #spare: Uint8Array[] = [];

  /** Lines waiting. */
  get lines(): number {
    return this.#lines;
  }

  /** Bytes waiting. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Appends `line` and a newline. */
  push(line: string): void {
    // UTF-8 needs at most 3 bytes per UTF-16 unit
    const most = line.length * 3 + 1;
    if (most > CHUNK_BYTES) {
      const bytes = encoder.encode(line + "\n");
      this.#close();
      this.#full.push(bytes);
      this.#count(bytes.length);
      return;
    }
    if (this.#current === undefined || this.#used + most > CHUNK_BYTES) {
      this.#close();
      this.#current = this.#spare.pop() ?? new Uint8Array(CHUNK_BYTES);
      this.#used = 0;
    }
    const { written } = encoder.encodeInto(
      line,
      this.#current.subarray(this.#used),
    );
    this.#current[this.#used + written] = NEWLINE;
    this.#used += written + 1;
    this.#count(written + 1);
  }

  /**
   * Takes what is waiting, in order. Give the chunks back with
   * {@linkcode LineBuffer.recycle} once they are written.
   */
  take(): { chunks: Uint8Array[]; lines: number } {
    this.#close();
    const out = { chunks: this.#full, lines: this.#lines };
    this.#full = [];
    this.#lines = 0;
    this.#bytes = 0;
    return out;
  }

  /** Chunks from {@linkcode LineBuffer.take}, written: they may be reused. */
  recycle(chunks: Uint8Array[]): void {
    for (const c of chunks) {
      if (this.#spare.length >= 2) return;
      if (c.byteOffset === 0 && c.buffer.byteLength === CHUNK_BYTES) {
        this.#spare.push(new Uint8Array(c.buffer));
      }
    }
  }

  #count(bytes: number): void {
    this.#lines++;
    this.#bytes += bytes;
  }

  #close(): void {
    if (this.#current !== undefined && this.#used > 0) {
      this.#full.push(this.#current.subarray(0, this.#used));
      this.#current = undefined;
    }
  }
}
