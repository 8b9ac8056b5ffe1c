/**
 * Which request targets MCA forwards. MCA decides (routing, policy, the
 * log) on the target it parsed, so the API server must see exactly that
 * target: anything a later step could read differently is refused.
 *
 * - Only origin-form (`/path?query`): absolute-form (`https://host/...`),
 *   authority-form and `*` are for proxies and OPTIONS, not API calls.
 * - No dot segments, plain or percent-encoded (`..`, `%2e%2e`): `fetch`
 *   and Go's URL handling resolve them, so `/version/%2e%2e/api/v1/...`
 *   would be decided as `/version` and served as `/api/v1/...`.
 * - No encoded slash or backslash (`%2f`, `%5c`) and no raw backslash:
 *   Go decodes the path before kube-apiserver splits it into segments,
 *   and WHATWG URLs treat `\` as `/`.
 * - No fragment (`#`): never sent by a client; `fetch` would drop it.
 *
 * kube-apiserver itself never needs any of these: every name a Kubernetes
 * object may have is a DNS label or subdomain, or a path-segment name that
 * `ValidatePathSegmentName` already refuses when it is `.`, `..` or holds
 * `/` or `%`.
 *
 * @example
 * ```ts
 * import { refuseTarget } from "./request_target.ts";
 * refuseTarget("/api/v1/pods"); // undefined: forwarded as is
 * refuseTarget("/api/v1/namespaces/%2e%2e/pods"); // a reason: 400
 * ```
 *
 * @module
 */

/** Why a request target is refused, or undefined when it is forwarded. */
export function refuseTarget(target: string): string | undefined {
  if (!target.startsWith("/")) {
    return "only a path starting with / is accepted as request target (no absolute-form or authority-form)";
  }
  if (target.includes("#")) {
    return "a request target cannot hold a fragment (#)";
  }
  const query = target.indexOf("?");
  const path = query < 0 ? target : target.slice(0, query);
  if (path.includes("\\") || /%(2f|5c)/i.test(path)) {
    return "encoded slashes and backslashes are not accepted in a request path";
  }
  for (const segment of path.split("/")) {
    const plain = segment.replace(/%2e/gi, ".");
    if (plain === "." || plain === "..") {
      return "dot segments (. and ..) are not accepted in a request path";
    }
  }
  return undefined;
}
