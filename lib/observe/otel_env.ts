/**
 * The standard OpenTelemetry SDK variables MCA reads for tracing: the OTLP
 * endpoint, the resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`)
 * and the `k=v,...` lists of the spec's environment-variable syntax.
 *
 * @module
 */

import type { AttrValue } from "./otlp_encode.ts";

/**
 * Where spans are POSTed: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given, or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces` (the spec's rule for the
 * signal path); `undefined` when neither is set (tracing off).
 */
export function exportUrl(env: Record<string, string | undefined>) {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (traces) return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!base) return undefined;
  return `${base.replace(/\/+$/, "")}/v1/traces`;
}

/** `service.name` from `OTEL_SERVICE_NAME` (default `mca`) over `OTEL_RESOURCE_ATTRIBUTES`. */
export function resourceFromEnv(
  env: Record<string, string | undefined>,
): Record<string, AttrValue> {
  const attrs: Record<string, AttrValue> = {
    "service.name": "mca",
    "telemetry.sdk.name": "mca",
    "telemetry.sdk.language": "js",
    ...parseList(env.OTEL_RESOURCE_ATTRIBUTES),
  };
  const name = env.OTEL_SERVICE_NAME?.trim();
  if (name) attrs["service.name"] = name;
  return attrs;
}

/** `k1=v1,k2=v2` (values percent-decoded), as the OTel spec writes lists. */
export function parseList(text?: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of (text ?? "").split(",")) {
    const eq = item.indexOf("=");
    if (eq <= 0) continue;
    const key = item.slice(0, eq).trim();
    try {
      out[key] = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      out[key] = item.slice(eq + 1).trim();
    }
  }
  return out;
}
