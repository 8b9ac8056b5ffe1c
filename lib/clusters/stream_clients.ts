/**
 * The `fetch` clients watches go through, one cluster's worth: each client
 * may speak HTTP/2 (ALPN decides; kube-apiserver offers it), so up to
 * {@linkcode STREAMS_PER_CLIENT} watches share one TLS connection instead of
 * holding one each, as client-go's watches do. A client is given at most
 * that many streams at once: one HTTP/2 connection holds new streams back,
 * without failing them, once the server's concurrent-stream limit is
 * reached (kube-apiserver's `--http2-max-streams-per-connection` is 1,000
 * by default, Go's own default 250), so the pool opens another client long
 * before. Against a server that speaks
 * only HTTP/1.1 the same clients open a connection per watch, as before.
 *
 * Measured outside MCA (`bench/repro/h2_watch_memory.ts`, ADR 0007): 1,000
 * watches cost the client side 88.5 KiB each over `node:https`, 52.5 KiB
 * over HTTP/2 `fetch` (10 connections) read into an 8 KiB buffer.
 *
 * @module
 */

/** Watches given to one client (one HTTP/2 connection) at most. */
export const STREAMS_PER_CLIENT = 100;

/** One stream's client; `release` gives its place back (idempotent). */
export interface StreamLease {
  client: Deno.HttpClient;
  release(): void;
}

interface Slot {
  client: Deno.HttpClient;
  active: number;
}

/** A pool of HTTP/2-capable `fetch` clients sharing one set of TLS options. */
export class StreamClients {
  readonly #make: () => Deno.HttpClient;
  readonly #perClient: number;
  #slots: Slot[] = [];
  #closed = false;

  /**
   * @param make creates one client (the same trust and client certificate
   *   as the cluster's other connections)
   */
  constructor(
    make: () => Deno.HttpClient,
    options: { perClient?: number } = {},
  ) {
    this.#make = make;
    this.#perClient = options.perClient ?? STREAMS_PER_CLIENT;
  }

  /** Clients open now (each one TLS connection over HTTP/2). */
  get clients(): number {
    return this.#slots.length;
  }

  /** A client with room for one more stream (a new one when all are full). */
  acquire(): StreamLease {
    if (this.#closed) throw new Error("stream clients closed");
    let slot = this.#slots.find((s) => s.active < this.#perClient);
    if (slot === undefined) {
      slot = { client: this.#make(), active: 0 };
      this.#slots.push(slot);
    }
    slot.active++;
    let released = false;
    const held = slot;
    return {
      client: held.client,
      release: () => {
        if (released) return;
        released = true;
        held.active--;
        this.#retireIdle();
      },
    };
  }

  /**
   * No new streams from now on; each client is closed once its last stream
   * ends (a rotated CA or credential must not cut the watches under way).
   */
  close(): void {
    this.#closed = true;
    this.#retireIdle();
  }

  /** Closes idle clients once closed, and idle ones beyond the first. */
  #retireIdle(): void {
    const keep: Slot[] = [];
    for (const s of this.#slots) {
      const spare = !this.#closed && keep.length === 0;
      if (s.active > 0 || spare) keep.push(s);
      else s.client.close();
    }
    this.#slots = keep;
  }
}
