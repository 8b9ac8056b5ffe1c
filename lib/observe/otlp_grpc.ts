/**
 * OTLP/gRPC: the same protobuf `ExportTraceServiceRequest` as
 * `http/protobuf`, sent as the unary call `TraceService/Export` by
 * `@grpc/grpc-js` (framing, trailers, `grpc-status`, reconnects and
 * deadlines are the library's). kube-apiserver exports only gRPC, so many
 * collectors listen only on 4317. The library is imported on the first
 * export, so an `mca` that does not trace never loads it.
 *
 * @module
 */

import { Buffer } from "node:buffer";

/** The unary method of `opentelemetry.proto.collector.trace.v1`. */
export const EXPORT_METHOD =
  "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/** Where a gRPC exporter sends, from the OTLP endpoint variable. */
export interface GrpcTarget {
  /** `host:port`, as grpc-js takes it. */
  address: string;
  tls: boolean;
}

/**
 * The endpoint as the OTLP spec reads it for gRPC: `http://host:port`
 * (plaintext), `https://host:port` (TLS), or `host:port` (TLS unless
 * `OTEL_EXPORTER_OTLP_INSECURE=true`); a path is not used. Throws a message
 * saying what to write for anything else.
 */
export function grpcTarget(endpoint: string, insecure?: string): GrpcTarget {
  const plain = /^[^/:]+:\d+$/.test(endpoint) ||
    /^\[[^\]]+\]:\d+$/.test(endpoint);
  if (plain) {
    return {
      address: endpoint,
      tls: insecure?.trim().toLowerCase() !== "true",
    };
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    url = new URL("invalid:");
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.host) {
    throw new Error(
      `OTEL_EXPORTER_OTLP_ENDPOINT=${endpoint} is not a gRPC endpoint: write http://host:4317 (plaintext) or https://host:4317 (TLS)`,
    );
  }
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return { address: `${url.hostname}:${port}`, tls: url.protocol === "https:" };
}

/** Sends one serialised export request; rejects with a message for the log. */
export type GrpcSend = (body: Uint8Array) => Promise<void>;

/** One client (one HTTP/2 connection, re-made by grpc-js when it drops). */
export function grpcSender(
  target: GrpcTarget,
  options: { headers?: Record<string, string>; timeoutMs?: number } = {},
): GrpcSend & { close(): void } {
  const library = import("@grpc/grpc-js");
  let client: Promise<import("@grpc/grpc-js").Client> | undefined;
  const connect = () =>
    client ??= library.then((grpc) =>
      new grpc.Client(
        target.address,
        target.tls
          ? grpc.credentials.createSsl()
          : grpc.credentials.createInsecure(),
      )
    );
  const send = async (body: Uint8Array) => {
    const grpc = await library;
    const c = await connect();
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(options.headers ?? {})) {
      metadata.set(k.toLowerCase(), v);
    }
    await new Promise<void>((resolve, reject) => {
      c.makeUnaryRequest(
        EXPORT_METHOD,
        (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength),
        (b: Buffer) => b,
        body,
        metadata,
        { deadline: Date.now() + (options.timeoutMs ?? 10_000) },
        (error: Error | null) => error ? reject(error) : resolve(),
      );
    });
  };
  return Object.assign(send, {
    close: () => void client?.then((c) => c.close()),
  });
}
