/**
 * Label values for MCA's metrics, normalised the way kube-apiserver's
 * `k8s.io/apiserver/pkg/endpoints/metrics` does, and bounded.
 *
 * Every label value comes from the request line (never a header value, so
 * never a token) and passes through a bound: a fixed vocabulary (verbs,
 * scopes, codes), a well-formed pattern, or an admitted set that only grows
 * when the API server answered with success for that value and is capped.
 * An app inventing paths therefore cannot grow the series count; what does
 * not fit is reported as `other`.
 *
 * @module
 */

import type { RequestInfo } from "../kube/request_info.ts";

/** The label value for anything outside a label's bound. */
export const OTHER = "other";

/** kube-apiserver's `validRequestMethods`: any other verb is `other`. */
const VALID_VERBS = new Set(
  "APPLY CONNECT CREATE DELETE DELETECOLLECTION GET LIST PATCH POST PROXY PUT UPDATE WATCH"
    .split(" "),
);
/** kube-apiserver's `validConnectRequests`. */
const CONNECT_SUBRESOURCES = new Set(
  "log exec portforward attach proxy".split(" "),
);
const APPLY_PATCH_TYPE = "application/apply-patch+yaml";

/** Scope as kube-apiserver's `CleanScope`: resource, namespace, cluster or "". */
export function cleanScope(info: RequestInfo): string {
  if (info.name !== "" || info.verb === "create") return "resource";
  if (info.namespace !== "") return "namespace";
  if (info.isResourceRequest) return "cluster";
  return "";
}

/**
 * The reported verb, as kube-apiserver's `NormalizedVerb` + `cleanVerb`:
 * GET/HEAD become LIST unless a single object is named, `watch=true` and the
 * legacy `/watch/` paths become WATCH, a PATCH with the apply-patch content
 * type becomes APPLY, exec/attach/portforward/proxy/log become CONNECT, and
 * a verb outside the known set becomes `other`.
 */
export function cleanVerb(
  method: string,
  info: RequestInfo,
  contentType?: string,
): string {
  if (info.verb === "watch") return "WATCH";
  const scope = cleanScope(info);
  let verb = method.toUpperCase();
  if (verb === "GET" || verb === "HEAD") {
    verb = scope !== "resource" && scope !== "" ? "LIST" : "GET";
  }
  if (
    verb === "PATCH" &&
    contentType?.split(";")[0].trim().toLowerCase() === APPLY_PATCH_TYPE
  ) {
    verb = "APPLY";
  }
  if (
    info.isResourceRequest && CONNECT_SUBRESOURCES.has(info.subresource)
  ) {
    verb = "CONNECT";
  }
  return VALID_VERBS.has(verb) ? verb : OTHER;
}

/** An HTTP status as a label: `0` (no answer) or 100-599, else `other`. */
export function cleanCode(status: number): string {
  if (status === 0) return "0";
  return Number.isInteger(status) && status >= 100 && status <= 599
    ? String(status)
    : OTHER;
}

const DNS_LABELISH = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;
const VERSION = /^v[0-9]{1,3}((alpha|beta)[0-9]{1,3})?$/;

/** Options of {@link BoundedValues}. */
export interface BoundedOptions {
  /** Values always kept (built-in resources, groups...). */
  known?: Iterable<string>;
  /** Most values admitted beyond `known`; 100 by default. */
  cap?: number;
  /**
   * Well-formed values; DNS-label-like by default. `null` for values the
   * operator chose (cluster names from kubeconfig contexts), not the app.
   */
  pattern?: RegExp | null;
}

/**
 * A label's admitted values: `known` ones, plus at most `cap` more, each
 * admitted the first time the API server answered 2xx for it (so it names
 * something that exists there). Malformed values are never admitted.
 */
export class BoundedValues {
  #known: Set<string>;
  #admitted = new Set<string>();
  #cap: number;
  #pattern: RegExp | null;

  constructor(options: BoundedOptions = {}) {
    this.#known = new Set(options.known ?? []);
    this.#cap = options.cap ?? 100;
    this.#pattern = options.pattern === undefined
      ? DNS_LABELISH
      : options.pattern;
  }

  /** The label value for `value`; `success` lets it be admitted. */
  value(value: string, success: boolean): string {
    if (value === "" || this.#known.has(value)) return value;
    if (this.#admitted.has(value)) return value;
    if (!success || (this.#pattern && !this.#pattern.test(value))) {
      return OTHER;
    }
    if (this.#admitted.size >= this.#cap) return OTHER;
    this.#admitted.add(value);
    return value;
  }
}

/** An API version label: `v1`, `v2beta1`... or `other`. */
export function cleanVersion(version: string): string {
  return version === "" || VERSION.test(version) ? version : OTHER;
}

/** Resources every Kubernetes cluster serves, always named. */
export const BUILTIN_RESOURCES: readonly string[] = (
  "bindings componentstatuses configmaps endpoints events limitranges " +
  "namespaces nodes persistentvolumeclaims persistentvolumes pods " +
  "podtemplates replicationcontrollers resourcequotas secrets " +
  "serviceaccounts services controllerrevisions daemonsets deployments " +
  "replicasets statefulsets tokenreviews localsubjectaccessreviews " +
  "selfsubjectaccessreviews selfsubjectrulesreviews selfsubjectreviews " +
  "subjectaccessreviews horizontalpodautoscalers cronjobs jobs " +
  "certificatesigningrequests leases endpointslices ingressclasses " +
  "ingresses networkpolicies poddisruptionbudgets clusterrolebindings " +
  "clusterroles rolebindings roles priorityclasses csidrivers csinodes " +
  "csistoragecapacities storageclasses volumeattachments runtimeclasses " +
  "customresourcedefinitions apiservices mutatingwebhookconfigurations " +
  "validatingwebhookconfigurations validatingadmissionpolicies " +
  "validatingadmissionpolicybindings flowschemas " +
  "prioritylevelconfigurations"
).split(" ");

/** API groups every Kubernetes cluster serves ("" is core). */
export const BUILTIN_GROUPS: readonly string[] = (
  "apps authentication.k8s.io authorization.k8s.io autoscaling batch " +
  "certificates.k8s.io coordination.k8s.io discovery.k8s.io events.k8s.io " +
  "networking.k8s.io policy rbac.authorization.k8s.io scheduling.k8s.io " +
  "storage.k8s.io node.k8s.io apiextensions.k8s.io apiregistration.k8s.io " +
  "admissionregistration.k8s.io flowcontrol.apiserver.k8s.io"
).split(" ");

/** Subresources kube-apiserver serves for built-in resources. */
export const BUILTIN_SUBRESOURCES: readonly string[] = (
  "status scale exec attach portforward proxy log binding eviction " +
  "ephemeralcontainers resize approval token finalize"
).split(" ");
