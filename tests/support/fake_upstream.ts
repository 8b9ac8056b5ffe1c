/**
 * An in-process TLS stand-in for kube-apiserver, built on `node:https`, for
 * the proxy's fast-tier tests.
 *
 * It records every request (headers as received, body size and SHA-256,
 * computed while streaming), checks the bearer token, serves a handful of
 * Kubernetes-shaped routes (version, configmap get/list/watch/write), some
 * test routes (`/big`, `/slow`, `/status/{code}`, `/gzip`) and takes over
 * the raw socket for SPDY/3.1 (opaque echo) and WebSocket (frame echo)
 * upgrades, like `kubectl exec` uses.
 *
 * @module
 */

import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { defaultTestTls } from "./test_certs.ts";

/** One request as the fake upstream received it. */
export interface RecordedRequest {
  /** HTTP method, e.g. "GET". */
  method: string;
  /** Request target as sent (path and query). */
  url: string;
  /** Headers as received (node:http lower-cases names, joins repeats). */
  headers: Record<string, string | string[] | undefined>;
  /** Request body size in bytes (0 for upgrades). */
  bodyBytes: number;
  /** Hex SHA-256 of the request body. */
  bodySha256: string;
}

/** A running fake upstream; see {@linkcode startFakeUpstream}. */
export interface FakeUpstream {
  /** Base URL, e.g. "https://127.0.0.1:41234" (no trailing slash). */
  url: string;
  /** The TCP port it listens on. */
  port: number;
  /** PEM of the CA that signed the server certificate; trust this. */
  caPem: string;
  /** Every request received so far, in completion order. */
  requests: RecordedRequest[];
  /** Replaces the accepted bearer token. */
  setToken(token: string): void;
  /** Accepts any of these tokens (as an API server does during rotation). */
  acceptTokens(tokens: string[]): void;
  /** Answer every SelfSubjectAccessReview with `allowed` (default true). */
  allowReviews(allowed: boolean): void;
  /** Configmaps of these names are not held: a GET of one by name is a 404. */
  hideConfigMaps(names: string[]): void;
  /** Writes `JSON.stringify(event) + "\n"` to every open watch. */
  pushWatchEvent(event: object): void;
  /** Ends every open watch response normally. */
  closeWatches(): void;
  /** Number of watch responses currently open. */
  openWatches(): number;
  /** Resolves once at least `n` watches are open (rejects after timeout). */
  waitForWatches(n: number, timeoutMs?: number): Promise<void>;
  /** Resolves once at least `n` requests were recorded. */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  /** Resolves once at least `n` responses were aborted by the client. */
  waitForAborts(n: number, timeoutMs?: number): Promise<void>;
  /** Closes the server and every socket; resolves when fully closed. */
  close(): Promise<void>;
  /**
   * Responses whose client went away before the server ended them (watch,
   * `/big`, `/slow`...). Not counted while {@linkcode FakeUpstream.close}
   * tears connections down.
   */
  abortedRequests(): number;
  /** Requests whose head arrived and whose response has not closed yet. */
  inFlightRequests(): number;
}

/** Options for {@linkcode startFakeUpstream}. */
export interface FakeUpstreamOptions {
  /** Bearer token to accept; default {@linkcode DEFAULT_FAKE_TOKEN}. */
  token?: string;
  /** Address to listen on; default "127.0.0.1". The port is always random. */
  host?: string;
  /** Port to listen on; a free one when not set (0). */
  port?: number;
  /**
   * Server certificate, key and CA PEMs; default a shared process-wide
   * CA + leaf for IP:127.0.0.1 and DNS:localhost.
   */
  tls?: { certPem: string; keyPem: string; caPem: string };
}

/** The bearer token accepted when no `token` option is given. */
export const DEFAULT_FAKE_TOKEN = "fake-upstream-sa-token";

/** The uncompressed body served (gzip-encoded) by `GET /gzip`. */
export const GZIP_PLAIN_BODY: string = JSON.stringify({
  kind: "ConfigMap",
  apiVersion: "v1",
  metadata: { name: "gzipped", namespace: "default" },
  data: { text: "compressible ".repeat(200) },
});

/** The bytes of `GET /gzip` as sent on the wire (Content-Encoding: gzip). */
export const GZIP_WIRE_BODY: Uint8Array = new Uint8Array(
  gzipSync(GZIP_PLAIN_BODY),
);

/** `GET /version` body. */
export const FAKE_VERSION = {
  major: "1",
  minor: "34",
  gitVersion: "v1.34.4-fake",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2026-01-01T00:00:00Z",
  goVersion: "go1.24.0",
  compiler: "gc",
  platform: "linux/amd64",
};

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B85";
const BIG_CHUNK = 64 * 1024;
const BIG_PREFIX = Buffer.from(
  '{"kind":"List","apiVersion":"v1","metadata":{},"items":[],"padding":"',
);
const BIG_SUFFIX = Buffer.from('"}');
const BIG_FILL = Buffer.alloc(BIG_CHUNK, "x");
const MAX_WS_PAYLOAD = 16 * 1024 * 1024;
const EMPTY_SHA256 = createHash("sha256").digest("hex");
const TRUE_VALUES = new Set(["1", "t", "T", "true", "TRUE", "True"]);
const REASONS: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "AlreadyExists",
  410: "Expired",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};
const NO_BODY_CODES = new Set([204, 304]);

interface Waiter {
  check(): boolean;
  resolve(): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

interface State {
  token: string;
  extraTokens: string[];
  requests: RecordedRequest[];
  watches: Set<ServerResponse>;
  sockets: Set<Duplex>;
  timers: Set<ReturnType<typeof setTimeout>>;
  waiters: Set<Waiter>;
  aborted: number;
  /** Requests whose head arrived and whose response has not closed. */
  inFlight: number;
  closing: boolean;
  hidden: Set<string>;
  allowReviews: boolean;
}

/**
 * Starts a fake kube-apiserver on a random port of `host` (default
 * 127.0.0.1) with TLS, accepting `Authorization: Bearer <token>`.
 *
 * Routes (all need the token; otherwise 401 with a Kubernetes Status):
 * - `GET /version`
 * - `GET` of the configmaps of a namespace, or of a configmap, whose name
 *   holds `pb-bad` → a truncated body labelled
 *   `application/vnd.kubernetes.protobuf`
 * - `GET /api/v1/namespaces/{ns}/configmaps/{name}`, `GET .../configmaps`
 *   (list); `?watch=1` streams events given to `pushWatchEvent`
 * - `POST|PUT|PATCH /api/v1/namespaces/{ns}/configmaps[/...]` → JSON
 *   `{received, sha256}` (201 for POST)
 * - `GET /big?bytes=N[&length=1][&chunk=C]` → N bytes in writes of C bytes
 *   (64 KiB by default; `chunk=1600` is how kube-apiserver sends a large
 *   LIST), chunked, or with Content-Length when `length=1`
 * - `GET /api/v1/namespaces/{ns}/pods/{name}/log` → one line; with
 *   `follow=true` a stream of what `pushWatchEvent` sends, like a watch
 * - `GET /apis/big.example/v1/namespaces/{ns}/things/{name}?bytes=N` → one
 *   object of N bytes with Content-Length (a huge GET by name)
 * - `GET /slow?ms=N` → answers after N ms
 * - `GET /status/{code}` → that code with a Status body
 * - `GET /gzip` → {@linkcode GZIP_WIRE_BODY} with `Content-Encoding: gzip`
 * - upgrades: `Upgrade: SPDY/3.1` (byte echo), `Upgrade: websocket` (frame
 *   echo, first offered subprotocol chosen)
 */
export function startFakeUpstream(
  options: FakeUpstreamOptions = {},
): Promise<FakeUpstream> {
  const tls = options.tls ?? tlsFromDefault();
  const host = options.host ?? "127.0.0.1";
  const state: State = {
    token: options.token ?? DEFAULT_FAKE_TOKEN,
    extraTokens: [],
    requests: [],
    watches: new Set(),
    sockets: new Set(),
    timers: new Set(),
    waiters: new Set(),
    aborted: 0,
    inFlight: 0,
    closing: false,
    hidden: new Set(),
    allowReviews: true,
  };
  const server = https.createServer(
    { cert: tls.certPem, key: tls.keyPem },
    function onRequest(req, res) {
      handleRequest(state, req, res);
    },
  );
  server.on("connection", function onConnection(socket: Socket) {
    trackSocket(state, socket);
  });
  server.on("secureConnection", function onSecure(socket: Duplex) {
    trackSocket(state, socket);
  });
  server.on("upgrade", function onUpgrade(req, socket: Duplex, head) {
    handleUpgrade(state, req, socket, head);
  });
  server.on("tlsClientError", function onTlsError() {
    // A client that rejects our certificate is a normal test case.
  });

  let closed: Promise<void> | undefined;
  function close(): Promise<void> {
    if (closed !== undefined) return closed;
    state.closing = true;
    for (const timer of state.timers) clearTimeout(timer);
    state.timers.clear();
    for (const waiter of state.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error("fake upstream closed while waiting"));
    }
    state.waiters.clear();
    closed = new Promise<void>((resolve) => {
      server.close(function onClosed() {
        resolve();
      });
      for (const res of state.watches) res.destroy();
      state.watches.clear();
      server.closeAllConnections?.();
      for (const socket of state.sockets) socket.destroy();
      state.sockets.clear();
    });
    return closed;
  }

  return new Promise<FakeUpstream>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, function onListening() {
      server.off("error", reject);
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error("fake upstream: unexpected listen address"));
        return;
      }
      const port = address.port;
      const urlHost = host.includes(":") ? `[${host}]` : host;
      resolve({
        url: `https://${urlHost}:${port}`,
        port,
        caPem: tls.caPem,
        requests: state.requests,
        acceptTokens(tokens: string[]): void {
          state.token = tokens[0];
          state.extraTokens = tokens.slice(1);
        },
        setToken(token: string): void {
          state.token = token;
          state.extraTokens = [];
        },
        allowReviews(allowed: boolean): void {
          state.allowReviews = allowed;
        },
        hideConfigMaps(names: string[]): void {
          state.hidden = new Set(names);
        },
        pushWatchEvent(event: object): void {
          const line = JSON.stringify(event) + "\n";
          for (const res of state.watches) res.write(line);
        },
        closeWatches(): void {
          const open = [...state.watches];
          state.watches.clear();
          for (const res of open) res.end();
          notify(state);
        },
        openWatches(): number {
          return state.watches.size;
        },
        waitForWatches(n: number, timeoutMs?: number): Promise<void> {
          return waitUntil(
            state,
            () => state.watches.size >= n,
            () => `${n} open watches (have ${state.watches.size})`,
            timeoutMs,
          );
        },
        waitForRequests(n: number, timeoutMs?: number): Promise<void> {
          return waitUntil(
            state,
            () => state.requests.length >= n,
            () => `${n} requests (have ${state.requests.length})`,
            timeoutMs,
          );
        },
        waitForAborts(n: number, timeoutMs?: number): Promise<void> {
          return waitUntil(
            state,
            () => state.aborted >= n,
            () => `${n} aborted responses (have ${state.aborted})`,
            timeoutMs,
          );
        },
        close,
        inFlightRequests(): number {
          return state.inFlight;
        },
        abortedRequests(): number {
          return state.aborted;
        },
      });
    });
  });
}

function tlsFromDefault(): { certPem: string; keyPem: string; caPem: string } {
  const { server } = defaultTestTls();
  return server;
}

function trackSocket(state: State, socket: Duplex): void {
  if (state.sockets.has(socket)) return;
  state.sockets.add(socket);
  socket.on("close", function onSocketClose() {
    state.sockets.delete(socket);
  });
}

function notify(state: State): void {
  for (const waiter of [...state.waiters]) {
    if (waiter.check()) {
      clearTimeout(waiter.timer);
      state.waiters.delete(waiter);
      waiter.resolve();
    }
  }
}

function waitUntil(
  state: State,
  check: () => boolean,
  describe: () => string,
  timeoutMs = 10_000,
): Promise<void> {
  if (check()) return Promise.resolve();
  if (state.closing) {
    return Promise.reject(new Error("fake upstream is closed"));
  }
  return new Promise<void>((resolve, reject) => {
    const waiter: Waiter = {
      check,
      resolve,
      reject,
      timer: setTimeout(function onTimeout() {
        state.waiters.delete(waiter);
        reject(new Error(`fake upstream: timed out waiting for ${describe()}`));
      }, timeoutMs),
    };
    state.waiters.add(waiter);
  });
}

/** Bodies of access reviews, kept whole to answer them. */
const REVIEW_BODIES = new WeakMap<IncomingMessage, Buffer>();

function handleRequest(
  state: State,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  state.inFlight++;
  res.on("close", function onResponseClose() {
    state.inFlight--;
    if (!res.writableEnded && !state.closing) {
      state.aborted++;
      notify(state);
    }
  });
  const hash = createHash("sha256");
  let bytes = 0;
  let entry: RecordedRequest | undefined;
  function record(): RecordedRequest {
    if (entry !== undefined) return entry;
    entry = {
      method: req.method ?? "",
      url: req.url ?? "",
      headers: { ...req.headers },
      bodyBytes: bytes,
      bodySha256: hash.digest("hex"),
    };
    // Health probes are background noise for the tests: not recorded.
    if (entry.url !== "/readyz") state.requests.push(entry);
    notify(state);
    return entry;
  }
  const review = (req.url ?? "").includes("accessreviews");
  const chunks: Buffer[] = [];
  req.on("data", function onData(chunk: Buffer) {
    bytes += chunk.length;
    hash.update(chunk);
    if (review) chunks.push(chunk);
  });
  req.on("end", function onEnd() {
    if (review) REVIEW_BODIES.set(req, Buffer.concat(chunks));
    const recorded = record();
    route(state, req, res, recorded.bodyBytes, recorded.bodySha256);
  });
  req.on("error", function onRequestError() {
    record();
  });
  req.on("close", function onRequestClose() {
    record();
  });
}

function authorized(state: State, req: IncomingMessage): boolean {
  const header = req.headers.authorization;
  return header === `Bearer ${state.token}` ||
    state.extraTokens.some((t) => header === `Bearer ${t}`);
}

function route(
  state: State,
  req: IncomingMessage,
  res: ServerResponse,
  bodyBytes: number,
  bodySha256: string,
): void {
  if (res.destroyed) return;
  if (!authorized(state, req)) {
    sendStatus(res, 401, "Unauthorized");
    return;
  }
  const url = new URL(req.url ?? "/", "https://fake-upstream.invalid");
  const path = url.pathname;
  const method = req.method ?? "GET";
  const q = url.searchParams;

  let m: RegExpMatchArray | null;
  if (path.startsWith("/api/v1/namespaces/hang/")) {
    // an API server that accepted the call and never answers it
    return;
  } else if (method === "GET" && path === "/version") {
    sendJson(res, 200, FAKE_VERSION);
  } else if (method === "GET" && path === "/split") {
    // a sized body written in two pieces, some time apart
    const body = new Uint8Array(Number(q.get("bytes") ?? "2000")).fill(97);
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": String(body.length),
    });
    res.write(body.subarray(0, body.length >> 1));
    const timer = setTimeout(() => {
      state.timers.delete(timer);
      res.end(body.subarray(body.length >> 1));
    }, Number(q.get("gap") ?? "5"));
    state.timers.add(timer);
  } else if (
    method === "POST" && path.endsWith("/selfsubjectaccessreviews")
  ) {
    // echoes the review, allowed as set, naming the namespace it was asked
    const review = JSON.parse(REVIEW_BODIES.get(req)?.toString() || "{}");
    const ns = review.spec?.resourceAttributes?.namespace ?? "";
    sendJson(res, 201, {
      ...review,
      status: {
        allowed: state.allowReviews,
        reason: `asked about namespace ${ns}`,
      },
    });
  } else if (method === "GET" && path === "/readyz") {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok");
  } else if (method === "GET" && (m = path.match(/^\/status\/(\d{3})$/))) {
    const code = Number(m[1]);
    sendStatus(res, code, `fake status ${code}`);
  } else if (method === "GET" && path === "/gzip") {
    res.writeHead(200, {
      "Content-Type": "application/json",
      "Content-Encoding": "gzip",
      "Content-Length": String(GZIP_WIRE_BODY.length),
    });
    res.end(GZIP_WIRE_BODY);
  } else if (method === "GET" && path === "/big") {
    streamBig(res, Number(q.get("bytes") ?? "0"), {
      withLength: q.get("length") === "1",
      chunk: Number(q.get("chunk") ?? BIG_CHUNK),
    });
  } else if (method === "GET" && path === "/slow") {
    const ms = Number(q.get("ms") ?? "0");
    const timer = setTimeout(function onSlow() {
      state.timers.delete(timer);
      sendJson(res, 200, { slept: ms });
    }, ms);
    state.timers.add(timer);
    res.on("close", function onSlowClose() {
      clearTimeout(timer);
      state.timers.delete(timer);
    });
  } else if (
    method === "GET" &&
    /^\/apis\/big\.example\/v1\/namespaces\/[^/]+\/things\/[^/]+$/.test(path)
  ) {
    // one object of an aggregated API, as large as asked (a GET by name)
    streamBig(res, Number(q.get("bytes") ?? "0"), {
      withLength: true,
      chunk: BIG_CHUNK,
    });
  } else if (
    method === "GET" &&
    /^\/api\/v1\/namespaces\/[^/]+\/pods\/[^/]+\/log$/.test(path)
  ) {
    if (TRUE_VALUES.has(q.get("follow") ?? "")) openWatch(state, res);
    else {
      res.writeHead(200, { "content-type": "text/plain" }).end("a log line\n");
    }
  } else if (
    (m = path.match(
      /^\/api\/v1\/(watch\/)?namespaces\/([^/]+)\/configmaps(?:\/([^/]+))?$/,
    ))
  ) {
    const [, watchPrefix, ns, name] = m;
    const watch = watchPrefix !== undefined || TRUE_VALUES.has(
      q.get("watch") ?? "",
    );
    if (method === "GET" && (name ?? ns).includes("pb-bad")) {
      sendBadProtobuf(res);
    } else if (method === "GET" && watch) {
      openWatch(state, res);
    } else if (method === "GET" && name !== undefined) {
      if (state.hidden.has(name)) sendStatus(res, 404, `${name} not found`);
      else sendJson(res, 200, configMap(ns, name));
    } else if (method === "GET") {
      sendJson(res, 200, {
        kind: "ConfigMapList",
        apiVersion: "v1",
        metadata: { resourceVersion: "100" },
        items: [configMap(ns, "alpha"), configMap(ns, "beta")],
      });
    } else if (method === "POST" || method === "PUT" || method === "PATCH") {
      sendJson(res, method === "POST" ? 201 : 200, {
        received: bodyBytes,
        sha256: bodySha256,
      });
    } else {
      sendStatus(res, 405, `method ${method} not allowed`);
    }
  } else {
    sendStatus(res, 404, `${path} not found`);
  }
}

function configMap(namespace: string, name: string): object {
  return {
    kind: "ConfigMap",
    apiVersion: "v1",
    metadata: {
      name,
      namespace,
      uid: `00000000-0000-4000-8000-${hex12(name)}`,
      resourceVersion: "100",
      creationTimestamp: "2026-01-01T00:00:00Z",
    },
    data: { key: "value", name },
  };
}

function hex12(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 12);
}

function statusObject(code: number, message: string): object {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: code >= 200 && code < 300 ? "Success" : "Failure",
    message: code === 401 ? "Unauthorized" : message,
    reason: REASONS[code] ?? (code >= 500 ? "InternalError" : "Unknown"),
    code,
  };
}

/** The protobuf magic and a field whose length runs past the end. */
function sendBadProtobuf(res: ServerResponse): void {
  const body = Uint8Array.of(0x6b, 0x38, 0x73, 0x00, 0x12, 0x7f, 0x0a);
  res.writeHead(200, {
    "Content-Type": "application/vnd.kubernetes.protobuf",
    "Content-Length": String(body.length),
  });
  res.end(body);
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    "Content-Type": "application/json",
    "Content-Length": String(Buffer.byteLength(text)),
  });
  res.end(text);
}

function sendStatus(res: ServerResponse, code: number, message: string): void {
  if (code < 100 || code > 599) {
    sendStatus(res, 400, `bad status code ${code}`);
  } else if (NO_BODY_CODES.has(code) || code < 200) {
    res.writeHead(code < 200 ? 400 : code);
    res.end();
  } else {
    sendJson(res, code, statusObject(code, message));
  }
}

function openWatch(state: State, res: ServerResponse): void {
  res.writeHead(200, {
    "Content-Type": "application/json",
    "Transfer-Encoding": "chunked",
    "Cache-Control": "no-cache, private",
  });
  res.flushHeaders();
  state.watches.add(res);
  res.on("close", function onWatchClose() {
    if (state.watches.delete(res)) notify(state);
  });
  notify(state);
}

/** Bytes [offset, offset+length) of the virtual N-byte `/big` body. */
function bigChunk(total: number, offset: number, length: number): Buffer {
  const framed = total >= BIG_PREFIX.length + BIG_SUFFIX.length;
  const fillStart = framed ? BIG_PREFIX.length : 0;
  const fillEnd = framed ? total - BIG_SUFFIX.length : total;
  if (offset >= fillStart && offset + length <= fillEnd) {
    return BIG_FILL.subarray(0, length);
  }
  const chunk = Buffer.alloc(length, "x");
  for (let i = 0; i < length; i++) {
    const pos = offset + i;
    if (pos < fillStart) chunk[i] = BIG_PREFIX[pos];
    else if (pos >= fillEnd) chunk[i] = BIG_SUFFIX[pos - fillEnd];
  }
  return chunk;
}

function streamBig(
  res: ServerResponse,
  total: number,
  options: { withLength: boolean; chunk: number },
): void {
  const { withLength, chunk: step } = options;
  if (!Number.isSafeInteger(total) || total < 0) {
    sendStatus(res, 400, "bytes must be a non-negative integer");
    return;
  }
  if (!Number.isSafeInteger(step) || step < 1 || step > BIG_CHUNK) {
    sendStatus(res, 400, `chunk must be an integer in 1..${BIG_CHUNK}`);
    return;
  }
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
  };
  if (withLength) headers["Content-Length"] = String(total);
  res.writeHead(200, headers);
  let offset = 0;
  function pump(): void {
    while (offset < total) {
      if (res.destroyed) return;
      const length = Math.min(step, total - offset);
      const chunk = bigChunk(total, offset, length);
      offset += length;
      if (!res.write(chunk)) {
        res.once("drain", pump);
        return;
      }
    }
    res.end();
  }
  pump();
}

// ---------------------------------------------------------------- upgrades

function handleUpgrade(
  state: State,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  trackSocket(state, socket);
  socket.on("error", function onUpgradeSocketError() {
    socket.destroy();
  });
  state.requests.push({
    method: req.method ?? "",
    url: req.url ?? "",
    headers: { ...req.headers },
    bodyBytes: 0,
    bodySha256: EMPTY_SHA256,
  });
  notify(state);

  if (!authorized(state, req)) {
    rawResponse(socket, 401, "Unauthorized");
    return;
  }
  const path = new URL(req.url ?? "/", "https://fake-upstream.invalid")
    .pathname;
  if (path.startsWith("/api/v1/namespaces/hang/")) return; // never answers
  const statusMatch = path.match(/^\/status\/(\d{3})$/);
  if (statusMatch) {
    const code = Number(statusMatch[1]);
    rawResponse(socket, code, `fake status ${code}`);
    return;
  }
  const upgrade = String(req.headers.upgrade ?? "").toLowerCase();
  if (upgrade === "spdy/3.1") {
    const version = firstToken(req.headers["x-stream-protocol-version"]);
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\n" +
        "Connection: Upgrade\r\n" +
        "Upgrade: SPDY/3.1\r\n" +
        (version ? `X-Stream-Protocol-Version: ${version}\r\n` : "") +
        "\r\n",
    );
    if (head.length > 0) socket.write(head);
    socket.on("data", function onSpdyData(chunk: Buffer) {
      socket.write(chunk);
    });
    socket.on("end", function onSpdyEnd() {
      socket.end();
    });
  } else if (upgrade === "websocket") {
    const key = req.headers["sec-websocket-key"];
    if (typeof key !== "string" || key.length === 0) {
      rawResponse(socket, 400, "missing Sec-WebSocket-Key");
      return;
    }
    const accept = createHash("sha1").update(key + WS_GUID).digest("base64");
    const protocol = firstToken(req.headers["sec-websocket-protocol"]);
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\n" +
        "Upgrade: websocket\r\n" +
        "Connection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\n` +
        (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : "") +
        "\r\n",
    );
    echoWebSocket(socket, head);
  } else {
    rawResponse(socket, 400, `unsupported upgrade ${upgrade}`);
  }
}

function firstToken(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(",") : value ?? "";
  return text.split(",")[0].trim();
}

function rawResponse(socket: Duplex, code: number, message: string): void {
  const body = JSON.stringify(statusObject(code, message));
  socket.end(
    `HTTP/1.1 ${code} ${REASONS[code] ?? "Error"}\r\n` +
      "Content-Type: application/json\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      "Connection: close\r\n" +
      "\r\n" + body,
  );
}

/** Encodes one unmasked (server-to-client) WebSocket frame. */
function encodeFrame(firstByte: number, payload: Buffer): Buffer {
  let header: Buffer;
  if (payload.length < 126) {
    header = Buffer.from([firstByte, payload.length]);
  } else if (payload.length < 65536) {
    header = Buffer.alloc(4);
    header[0] = firstByte;
    header[1] = 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = firstByte;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([header, payload]);
}

/**
 * Echoes WebSocket frames: each (masked) client frame goes back unmasked with
 * the same FIN bit and opcode; ping gets pong; close is answered and ends the
 * connection.
 */
function echoWebSocket(socket: Duplex, head: Buffer): void {
  let buffer: Buffer = Buffer.from(head);
  let closed = false;
  function parse(): void {
    while (!closed && buffer.length >= 2) {
      const first = buffer[0];
      const second = buffer[1];
      let length = second & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) return;
        length = buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buffer.length < 10) return;
        const big = buffer.readBigUInt64BE(2);
        if (big > BigInt(MAX_WS_PAYLOAD)) {
          closed = true;
          socket.end(encodeFrame(0x88, Buffer.from([0x03, 0xf1]))); // 1009
          return;
        }
        length = Number(big);
        offset = 10;
      }
      const masked = (second & 0x80) !== 0;
      const maskAt = offset;
      if (masked) offset += 4;
      if (buffer.length < offset + length) return;
      const payload = Buffer.from(buffer.subarray(offset, offset + length));
      if (masked) {
        for (let i = 0; i < payload.length; i++) {
          payload[i] ^= buffer[maskAt + (i & 3)];
        }
      }
      buffer = buffer.subarray(offset + length);
      const opcode = first & 0x0f;
      if (opcode === 0x8) {
        closed = true;
        socket.end(encodeFrame(0x88, payload));
      } else if (opcode === 0x9) {
        socket.write(encodeFrame(0x8a, payload));
      } else if (opcode !== 0xa) {
        socket.write(encodeFrame(first & 0x8f, payload));
      }
    }
  }
  socket.on("data", function onWsData(chunk: Buffer) {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    parse();
  });
  socket.on("end", function onWsEnd() {
    socket.end();
  });
  parse();
}
