/**
 * The `fetch` clients of one cluster's TLS settings: one HTTP/1.1 client
 * for answers that may be large, and the pool watches take (HTTP/2 where
 * the server offers it). `fetch` cannot express every TLS setting the
 * `node:https` agent can (skip-verify, a TLS server name): then there are
 * none, and every call takes `node:https`.
 *
 * @module
 */

import type { AgentOptions } from "node:https";
import { StreamClients } from "./stream_clients.ts";

/** The `fetch` clients of one set of TLS options (none if fetch cannot). */
export interface FetchClients {
  client: Deno.HttpClient;
  streams: StreamClients;
  close(): void;
}

/** Fetch clients matching a set of TLS options, if fetch can express them. */
export function fetchClients(tls: AgentOptions): FetchClients | undefined {
  if (tls.rejectUnauthorized === false || tls.servername) return undefined;
  const pem = (v: unknown) =>
    v === undefined || v === null ? undefined : String(v);
  const ca = pem(tls.ca);
  const cert = pem(tls.cert);
  const key = pem(tls.key);
  const options = {
    ...(ca ? { caCerts: [ca] } : {}),
    ...(cert && key ? { cert, key } : {}),
  };
  const client = Deno.createHttpClient({
    ...options,
    http1: true,
    http2: false,
  });
  const streams = new StreamClients(() =>
    Deno.createHttpClient({ ...options, http1: true, http2: true })
  );
  return {
    client,
    streams,
    close() {
      client.close();
      streams.close();
    },
  };
}
