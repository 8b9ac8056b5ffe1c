/**
 * Whether the webhook injects a Pod, and with which options: pure, so every
 * skip reason is unit-tested. Like linkerd2's proxy-injector, a skip carries
 * a stable reason code (for logs and metrics) and a sentence for people.
 *
 * @module
 */

import {
  InjectError,
  type InjectOptions,
  type JsonObject,
} from "../inject/pod_spec.ts";

/** The label (namespace or Pod) and annotation prefix users set. */
export const INJECT_LABEL = "mca.io/inject";
const PREFIX = "mca.io/";

/** Namespaces never injected, whatever their labels say. */
export const PROTECTED_NAMESPACES = ["kube-system", "kube-public"];

/** Per-Pod annotations and the option each one sets. */
export const ANNOTATIONS: Record<string, keyof InjectOptions> = {
  [`${PREFIX}image`]: "image",
  [`${PREFIX}cpu-request`]: "cpuRequest",
  [`${PREFIX}memory-request`]: "memoryRequest",
  [`${PREFIX}memory-limit`]: "memoryLimit",
  [`${PREFIX}routing-configmap`]: "routingConfigMap",
  [`${PREFIX}clusters-secret`]: "clustersSecret",
  [`${PREFIX}policy-configmap`]: "policyConfigMap",
};

/** Why a Pod is left alone. */
export type SkipReason =
  | "protected_namespace"
  | "pod_label_disabled"
  | "invalid_label"
  | "invalid_annotation"
  | "host_network"
  | "share_process_namespace";

/** The decision for one Pod. */
export type Decision =
  | { inject: true; options: InjectOptions }
  | { inject: false; reason: SkipReason; message: string; warn: boolean };

/** What the decision depends on besides the Pod. */
export interface DecideContext {
  /** The Pod's namespace (request.namespace). */
  namespace: string;
  /** The webhook's own namespace: never injected (it would block itself). */
  ownNamespace: string;
  /** Defaults from the webhook's flags. */
  defaults: InjectOptions;
}

const QUANTITY =
  /^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[mkMGTPE]|[eE][+-]?[0-9]+)?$/;

/** Decides whether (and how) to inject `pod`. */
export function decide(pod: JsonObject, ctx: DecideContext): Decision {
  if (
    ctx.namespace === ctx.ownNamespace ||
    PROTECTED_NAMESPACES.includes(ctx.namespace)
  ) {
    return skip(
      "protected_namespace",
      `namespace ${ctx.namespace} is never injected`,
      false,
    );
  }
  const meta = (pod.metadata ?? {}) as JsonObject;
  const label = ((meta.labels ?? {}) as JsonObject)[INJECT_LABEL];
  if (label === "disabled") {
    return skip("pod_label_disabled", `label ${INJECT_LABEL}=disabled`, false);
  }
  if (label !== undefined && label !== "enabled") {
    return skip(
      "invalid_label",
      `label ${INJECT_LABEL} must be "enabled" or "disabled", got ${
        JSON.stringify(label)
      }; the Pod was not injected`,
      true,
    );
  }
  if ((pod.spec as JsonObject | undefined)?.hostNetwork === true) {
    return skip(
      "host_network",
      "the Pod uses hostNetwork: true, so MCA cannot sit in front of its API calls; the Pod was admitted without the mca sidecar",
      true,
    );
  }
  if ((pod.spec as JsonObject | undefined)?.shareProcessNamespace === true) {
    return skip(
      "share_process_namespace",
      "the Pod uses shareProcessNamespace: true, so its apps could read mca's real token through /proc/<mca pid>/root; the Pod was admitted without the mca sidecar",
      true,
    );
  }
  try {
    return { inject: true, options: optionsOf(meta, ctx.defaults) };
  } catch (error) {
    if (!(error instanceof InjectError)) throw error;
    return skip("invalid_annotation", error.message, true);
  }
}

function skip(reason: SkipReason, message: string, warn: boolean): Decision {
  return { inject: false, reason, message, warn };
}

/** The webhook's defaults overridden by the Pod's `mca.io/*` annotations. */
function optionsOf(meta: JsonObject, defaults: InjectOptions): InjectOptions {
  const annotations = (meta.annotations ?? {}) as Record<string, unknown>;
  const options: Record<string, unknown> = { ...defaults };
  for (const [key, option] of Object.entries(ANNOTATIONS)) {
    const value = annotations[key];
    if (value === undefined) continue;
    const text = String(value);
    const bad = option === "image"
      ? text.trim() === "" || /\s/.test(text)
      : option.endsWith("Request") || option.endsWith("Limit")
      ? text !== "" && !QUANTITY.test(text)
      : false;
    if (bad) {
      throw new InjectError(
        `annotation ${key}: ${
          JSON.stringify(text)
        } is not a valid value; the Pod was admitted without the mca sidecar`,
      );
    }
    options[option] = text;
  }
  return options as InjectOptions;
}
