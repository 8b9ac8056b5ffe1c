/**
 * Classifies a Kubernetes API request the way kube-apiserver does, so MCA's
 * logs and routing name each call with the words RBAC and audit logs use.
 *
 * A faithful port of k8s.io/apiserver's `RequestInfoFactory`
 * (pkg/endpoints/request/requestinfo.go, as kube-apiserver configures it:
 * prefixes `api` and `apis`, `api` groupless), quirks included, with the Go
 * rules it leans on: `url.ParseRequestURI`/`ParseQuery`, `ListOptions`
 * decoding and `fields.ParseSelector`. Only the method and request-target are
 * read, never headers, so no credential can reach a RequestInfo.
 *
 * @module
 */

import { type FieldTerm, parseFieldSelector } from "./field_selector.ts";

/** What a request is, in Kubernetes terms; the fields of Go's RequestInfo. */
export interface RequestInfo {
  /** True for `/api/{v}/...` and `/apis/{g}/{v}/...` with a resource part. */
  isResourceRequest: boolean;
  /** The URL path, percent-decoded (Go's `req.URL.Path`). */
  path: string;
  /** Kube verb (get, list, watch, create, ...); lowercase HTTP method otherwise. */
  verb: string;
  /** `api` or `apis`; also set on some non-resource paths, as in Go. */
  apiPrefix: string;
  /** API group; "" for the legacy core group under `/api`. */
  apiGroup: string;
  apiVersion: string;
  /** "" for cluster-scoped and all-namespace requests. */
  namespace: string;
  /** Resource (plural, e.g. `pods`), not the kind. */
  resource: string;
  /** E.g. `status`, `exec`, `scale`. */
  subresource: string;
  /** From the path, or from `fieldSelector=metadata.name=X` on list/watch. */
  name: string;
  /** Path parts from `{resource}/{name}/...` on; the tail MCA routes on. */
  parts: string[];
  /** Raw `labelSelector` query value on list/watch/deletecollection. */
  labelSelector?: string;
}

const API_PREFIXES = new Set(["api", "apis"]);
const GROUPLESS_API_PREFIXES = new Set(["api"]);
const SPECIAL_VERBS = new Set(["proxy", "watch"]);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(["proxy"]);
const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);
const VERBS_WITH_SELECTORS = new Set(["list", "watch", "deletecollection"]);
// A Map, not an object literal: "toString" must not resolve to a verb.
const METHOD_VERBS = new Map([
  ["POST", "create"],
  ["GET", "get"],
  ["HEAD", "get"],
  ["PUT", "update"],
  ["PATCH", "patch"],
  ["DELETE", "delete"],
]);
const QUERY_KEYS = new Set(
  "watch fieldSelector labelSelector limit timeoutSeconds".split(" "),
);
// deno-lint-ignore no-control-regex
const CONTROL_CHAR = /[\x00-\x1f\x7f]/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const INT = /^[+-]?[0-9]+$/;
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Parses one request as kube-apiserver would. `target` is the HTTP
 * request-target (`/api/v1/pods?watch=1`; absolute-form is accepted, its
 * authority unchecked).
 * Never throws: a target Go's HTTP server would reject (bad percent-encoding,
 * control characters, no leading slash) yields a non-resource RequestInfo.
 */
export function parseRequestInfo(method: string, target: string): RequestInfo {
  const m = typeof method === "string" ? method : "";
  const t = typeof target === "string" ? target : "";
  try {
    return resolve(m, t);
  } catch {
    return nonResource(m, "");
  }
}

function nonResource(method: string, path: string): RequestInfo {
  return {
    isResourceRequest: false,
    path,
    verb: method.toLowerCase(),
    apiPrefix: "",
    apiGroup: "",
    apiVersion: "",
    namespace: "",
    resource: "",
    subresource: "",
    name: "",
    parts: [],
  };
}

function resolve(method: string, target: string): RequestInfo {
  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  const origin = CONTROL_CHAR.test(target) ? undefined : originPath(rawPath);
  const path = origin === undefined ? undefined : unescape(origin, false);
  if (path === undefined) return nonResource(method, rawPath);

  // From here on: NewRequestInfo, step by step.
  const info = nonResource(method, path);
  let parts = versionedParts(info, path);
  if (parts === undefined) return info;

  let verbViaPathPrefix = false;
  if (SPECIAL_VERBS.has(parts[0])) {
    // Go returns an error here (the apiserver answers 500) together with
    // the info known so far; we return that info.
    if (parts.length < 2) return info;
    info.verb = parts[0];
    parts = parts.slice(1);
    verbViaPathPrefix = true;
  } else {
    info.verb = METHOD_VERBS.get(method) ?? "";
  }
  resourceParts(info, parts);
  const query = parseQuery(q < 0 ? "" : target.slice(q + 1));
  queryVerb(info, query);

  // AuthorizeWithSelectors (on by default since 1.32) captures selectors.
  const labelSelector = query.get("labelSelector");
  if (
    labelSelector !== undefined && !verbViaPathPrefix &&
    VERBS_WITH_SELECTORS.has(info.verb)
  ) info.labelSelector = labelSelector;
  return info;
}

/**
 * Prefix, group (not under `/api`) and version: sets them on `info` and
 * returns the parts after the version, or undefined for a non-resource path.
 */
function versionedParts(info: RequestInfo, path: string): string[] | undefined {
  let parts = splitPath(path);
  if (parts.length < 3 || !API_PREFIXES.has(parts[0])) return undefined;
  info.apiPrefix = parts[0];
  parts = parts.slice(1);
  if (!GROUPLESS_API_PREFIXES.has(info.apiPrefix)) {
    if (parts.length < 3) return undefined;
    info.apiGroup = parts[0];
    parts = parts.slice(1);
  }
  info.isResourceRequest = true;
  info.apiVersion = parts[0];
  return parts.slice(1);
}

/** Namespace, resource, name and subresource from the parts after the verb. */
function resourceParts(info: RequestInfo, parts: string[]): void {
  if (parts[0] === "namespaces" && parts.length > 1) {
    info.namespace = parts[1];
    // namespaces/{ns}/status|finalize are subresources of the namespace.
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2])) {
      parts = parts.slice(2);
    }
  }
  info.parts = parts;
  if (parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(info.verb)) {
    info.subresource = parts[2];
  }
  if (parts.length >= 2) info.name = parts[1];
  info.resource = parts[0];
}

/** A nameless get is a list or a watch, a nameless delete a collection's. */
function queryVerb(info: RequestInfo, query: Map<string, string>): void {
  if (info.name === "" && info.verb === "get") {
    const terms = decodeListOptions(query);
    const watch = query.get("watch");
    const isWatch = watch !== undefined && !isFalse(watch, terms !== undefined);
    info.verb = isWatch ? "watch" : "list";
    const term = terms?.find((t) => t.field === "metadata.name" && t.equals);
    if (term && isValidPathSegmentName(term.value)) info.name = term.value;
  }
  if (info.name === "" && info.verb === "delete") {
    info.verb = "deletecollection";
  }
}

/** The path of an origin- or absolute-form target, as url.ParseRequestURI. */
function originPath(rawPath: string): string | undefined {
  if (rawPath.startsWith("/")) return rawPath;
  const scheme = SCHEME.exec(rawPath);
  if (!scheme) return undefined;
  const rest = rawPath.slice(scheme[0].length);
  if (!rest.startsWith("/")) return ""; // opaque URL: no path
  if (!rest.startsWith("//")) return rest;
  const slash = rest.indexOf("/", 2); // skip the authority
  return slash < 0 ? "" : rest.slice(slash);
}

/** Go's url unescape: strict `%XX`; `+` is a space only in queries. */
function unescape(s: string, query: boolean): string | undefined {
  if (!s.includes("%") && !(query && s.includes("+"))) return s;
  if (BAD_ESCAPE.test(s)) return undefined;
  const bytes = encoder.encode(s);
  const out = new Uint8Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x25) {
      const hex = String.fromCharCode(bytes[i + 1], bytes[i + 2]);
      out[n++] = parseInt(hex, 16);
      i += 2;
    } else {
      out[n++] = query && b === 0x2b ? 0x20 : b;
    }
  }
  return decoder.decode(out.subarray(0, n));
}

/** Go's splitPath: trim every leading/trailing slash, keep inner empties. */
function splitPath(path: string): string[] {
  let start = 0;
  let end = path.length;
  while (start < end && path[start] === "/") start++;
  while (end > start && path[end - 1] === "/") end--;
  return start === end ? [] : path.slice(start, end).split("/");
}

/** First value of each key we read, per url.ParseQuery (bad pairs skipped). */
function parseQuery(raw: string): Map<string, string> {
  const first = new Map<string, string>();
  for (const pair of raw.split("&")) {
    if (pair === "" || pair.includes(";")) continue;
    const eq = pair.indexOf("=");
    const key = unescape(eq < 0 ? pair : pair.slice(0, eq), true);
    if (key === undefined || !QUERY_KEYS.has(key) || first.has(key)) continue;
    const value = unescape(eq < 0 ? "" : pair.slice(eq + 1), true);
    if (value !== undefined) first.set(key, value);
  }
  return first;
}

/**
 * ListOptions decoding: the field-selector terms, or undefined where Go fails
 * (bad int64 limit/timeoutSeconds, bad fieldSelector; labelSelector unchecked).
 */
function decodeListOptions(
  query: Map<string, string>,
): FieldTerm[] | undefined {
  for (const key of ["limit", "timeoutSeconds"]) {
    const value = query.get(key);
    if (value !== undefined && !isInt64(value)) return undefined;
  }
  return parseFieldSelector(query.get("fieldSelector") ?? "");
}

/** strconv.ParseInt(s, 10, 64) succeeds. */
function isInt64(s: string): boolean {
  if (!INT.test(s)) return false;
  const digits = s.replace(/^[+-]?0*/, "");
  if (digits.length !== 19) return digits.length < 19;
  return digits <=
    (s[0] === "-" ? "9223372036854775808" : "9223372036854775807");
}

/** Convert_Slice_string_To_bool's false (EqualFold folds ſ to s); or ToLower. */
function isFalse(value: string, fold: boolean): boolean {
  return value === "0" ||
    (fold ? /^[fF][aA][lL][sSſ][eE]$/ : /^[fF][aA][lL][sS][eE]$/).test(value);
}

function isValidPathSegmentName(name: string): boolean {
  return name !== "." && name !== ".." && !name.includes("/") &&
    !name.includes("%");
}
