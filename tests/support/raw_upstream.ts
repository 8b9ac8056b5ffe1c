/**
 * A TLS "API server" that speaks just enough HTTP/1.1 to script connection
 * behaviour the in-repo fake upstream cannot: per connection and per request
 * on it, answer, answer late, or close on reading the request head. For the
 * pooled-socket tests (a server closing a connection as a call goes out, an
 * idle pool closed by MCA first).
 *
 * Request bodies are not parsed: script only bodiless requests past the
 * first with a body on a connection.
 *
 * @module
 */
import { createServer, type TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import { defaultTestTls } from "./test_certs.ts";

/** A request head the upstream read: its connection and index on it. */
export interface RawHead {
  connection: number;
  index: number;
  /** The request line, e.g. `GET /api HTTP/1.1`. */
  line: string;
}

/**
 * What to do with a request: `true` answers 200 at once, `false` closes
 * the connection without answering, a number answers after that many ms.
 */
export type RawResponse = boolean | number;

/** A running raw upstream. */
export interface RawUpstream {
  heads: RawHead[];
  caPem: string;
  url: URL;
  /** Resolves when connection `n` (1-based) has closed. */
  closed(n: number): Promise<void>;
  close(): Promise<void>;
}

const BODY = JSON.stringify({ kind: "Status", status: "Success" });
const ANSWER = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" +
  `content-length: ${BODY.length}\r\n\r\n${BODY}`;

/** Starts a raw upstream on loopback that does what `respond` says. */
export async function startRawUpstream(
  respond: (head: RawHead) => RawResponse,
): Promise<RawUpstream> {
  const { ca, server } = defaultTestTls();
  const heads: RawHead[] = [];
  const closings: PromiseWithResolvers<void>[] = [];
  const closing = (n: number) => closings[n] ??= Promise.withResolvers();
  let connections = 0;
  const tls = createServer(
    { key: server.keyPem, cert: server.certPem },
    (socket: TLSSocket) => {
      const connection = ++connections;
      let index = 0;
      let buffered = "";
      socket.on("error", () => {});
      socket.on("close", () => closing(connection).resolve());
      socket.on("data", (chunk: Uint8Array) => {
        buffered += new TextDecoder().decode(chunk);
        let end: number;
        while ((end = buffered.indexOf("\r\n\r\n")) >= 0) {
          const head = {
            connection,
            index: ++index,
            line: buffered.slice(0, buffered.indexOf("\r\n")),
          };
          buffered = buffered.slice(end + 4);
          heads.push(head);
          const what = respond(head);
          if (what === false) return void socket.destroy();
          if (what === true) socket.write(ANSWER);
          else setTimeout(() => socket.destroyed || socket.write(ANSWER), what);
        }
      });
    },
  );
  await new Promise<void>((resolve) => tls.listen(0, "127.0.0.1", resolve));
  const port = (tls.address() as AddressInfo).port;
  return {
    heads,
    caPem: ca.certPem,
    url: new URL(`https://127.0.0.1:${port}`),
    closed: (n) => closing(n).promise,
    close: () => new Promise<void>((resolve) => tls.close(() => resolve())),
  };
}
