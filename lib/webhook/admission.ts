/**
 * AdmissionReview `admission.k8s.io/v1` in → AdmissionReview out, pure: the
 * HTTP server only moves bytes. A Pod is never blocked (`allowed: true`
 * always); a Pod that cannot be injected gets `warnings` instead, which
 * kubectl prints.
 *
 * @module
 */

import { jsonPatch } from "../inject/json_patch.ts";
import {
  InjectError,
  injectPodSpec,
  type JsonObject,
} from "../inject/pod_spec.ts";
import { decide, type DecideContext } from "./decide.ts";

/** Largest AdmissionReview body accepted (the API server sends at most 3 MiB objects). */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** The outcome of one review, with what to log. */
export interface ReviewResult {
  /** The AdmissionReview to send back (HTTP 200). */
  review: JsonObject;
  /** One log line's fields: uid, namespace, pod, outcome, reason. */
  log: Record<string, unknown>;
}

/** A body that is not a usable AdmissionReview: HTTP 400 with `message`. */
export class BadReviewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BadReviewError";
  }
}

/** Parses and checks a request body; throws {@link BadReviewError}. */
export function parseReview(body: string): JsonObject {
  let review: unknown;
  try {
    review = JSON.parse(body);
  } catch {
    throw new BadReviewError(
      "the body is not JSON: expected an AdmissionReview",
    );
  }
  if (review === null || typeof review !== "object" || Array.isArray(review)) {
    throw new BadReviewError("the body is not a JSON object");
  }
  const r = review as JsonObject;
  if (r.apiVersion !== "admission.k8s.io/v1" || r.kind !== "AdmissionReview") {
    throw new BadReviewError(
      `expected apiVersion admission.k8s.io/v1, kind AdmissionReview; got ${
        JSON.stringify(r.apiVersion)
      }, ${JSON.stringify(r.kind)} (set admissionReviewVersions: [v1])`,
    );
  }
  const request = r.request as JsonObject | undefined;
  if (!request || typeof request.uid !== "string" || request.uid === "") {
    throw new BadReviewError("the AdmissionReview has no request.uid");
  }
  return r;
}

/** Answers one parsed AdmissionReview. */
export function review(
  parsed: JsonObject,
  ctx: Omit<DecideContext, "namespace">,
): ReviewResult {
  const request = parsed.request as JsonObject;
  const uid = request.uid as string;
  const namespace = String(request.namespace ?? "");
  const pod = request.object as JsonObject | undefined;
  const meta = (pod?.metadata ?? {}) as JsonObject;
  const log: Record<string, unknown> = {
    uid,
    namespace,
    pod: meta.name ?? `${meta.generateName ?? ""}*`,
    dryRun: request.dryRun === true,
  };
  const kind = request.kind as JsonObject | undefined;
  const isPodCreate = kind?.group === "" && kind?.kind === "Pod" &&
    request.operation === "CREATE" && !request.subResource &&
    pod !== null && typeof pod === "object";
  if (!isPodCreate) {
    return answer(uid, [], [], {
      ...log,
      outcome: "ignored",
      reason: "not_pod_create",
    });
  }
  const decision = decide(pod, { ...ctx, namespace });
  if (!decision.inject) {
    const warnings = decision.warn ? [`mca: ${decision.message}`] : [];
    return answer(uid, [], warnings, {
      ...log,
      outcome: "skipped",
      reason: decision.reason,
      message: decision.message,
    });
  }
  let after: JsonObject;
  try {
    after = {
      ...pod,
      spec: injectPodSpec(pod.spec as JsonObject, decision.options),
    };
  } catch (error) {
    if (!(error instanceof InjectError)) throw error;
    return answer(uid, [], [
      `mca: ${error.message}; the Pod was admitted without the mca sidecar`,
    ], {
      ...log,
      outcome: "skipped",
      reason: "cannot_inject",
      message: error.message,
    });
  }
  const ops = jsonPatch(pod, after);
  return answer(uid, ops, [], {
    ...log,
    outcome: ops.length > 0 ? "injected" : "already_injected",
  });
}

function answer(
  uid: string,
  ops: unknown[],
  warnings: string[],
  log: Record<string, unknown>,
): ReviewResult {
  const response: JsonObject = { uid, allowed: true };
  if (ops.length > 0) {
    response.patchType = "JSONPatch";
    response.patch = base64(JSON.stringify(ops));
  }
  if (warnings.length > 0) response.warnings = warnings;
  return {
    review: {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response,
    },
    log,
  };
}

/** Base64 of UTF-8 text; a loop, as spreading a large array overflows the stack. */
function base64(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary);
}
