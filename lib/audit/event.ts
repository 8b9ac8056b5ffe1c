/**
 * `audit.k8s.io/v1` `Event` objects, built from what the observer seam
 * reports, in the exact shape kube-apiserver writes (field names, micro-
 * second timestamps, `responseStatus` as a `metav1.Status`), so the tools
 * that read API-server audit logs read MCA's too.
 *
 * Only fields named here are written. Request headers never are, so neither
 * the app's placeholder token nor the real service-account token can reach
 * an event; a request body is recorded only at `Request` level and above.
 *
 * @module
 */

import type { RequestInfo } from "../kube/request_info.ts";
import type { WorkloadIdentity } from "../observe/observer.ts";
import type { AuditLevel, AuditStage } from "./policy.ts";

/** `authentication.k8s.io/v1` `UserInfo`. */
export interface AuditUser {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** `audit.k8s.io/v1` `ObjectReference`. */
export interface AuditObjectRef {
  resource?: string;
  namespace?: string;
  name?: string;
  apiGroup?: string;
  apiVersion?: string;
  subresource?: string;
}

/** The `metav1.Status` subset kube-apiserver records. */
export interface AuditResponseStatus {
  metadata: Record<string, never>;
  status?: "Failure";
  message?: string;
  code: number;
}

/** `audit.k8s.io/v1` `Event`. */
export interface AuditEvent {
  kind: "Event";
  apiVersion: "audit.k8s.io/v1";
  level: AuditLevel;
  auditID: string;
  stage: AuditStage;
  requestURI: string;
  verb: string;
  user: AuditUser;
  sourceIPs?: string[];
  userAgent?: string;
  objectRef?: AuditObjectRef;
  responseStatus?: AuditResponseStatus;
  requestObject?: unknown;
  responseObject?: unknown;
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  annotations?: Record<string, string>;
}

/** The fixed part of every stage's event of one call. */
export type EventBase = Omit<
  AuditEvent,
  | "kind"
  | "apiVersion"
  | "stage"
  | "responseStatus"
  | "requestObject"
  | "responseObject"
  | "stageTimestamp"
  | "annotations"
>;

/** The groups kube-apiserver gives a service account's token. */
export function serviceAccountUser(identity: WorkloadIdentity): AuditUser {
  const user: AuditUser = {
    username: identity.username,
    groups: [
      "system:serviceaccounts",
      `system:serviceaccounts:${identity.namespace}`,
      "system:authenticated",
    ],
  };
  const extra: Record<string, string[]> = {};
  if (identity.podName) {
    extra["authentication.kubernetes.io/pod-name"] = [identity.podName];
  }
  if (identity.podUid) {
    extra["authentication.kubernetes.io/pod-uid"] = [identity.podUid];
  }
  if (Object.keys(extra).length > 0) user.extra = extra;
  return user;
}

/** `objectRef` for a resource request, as kube-apiserver fills it. */
export function objectRef(info: RequestInfo): AuditObjectRef | undefined {
  if (!info.isResourceRequest) return undefined;
  const ref: AuditObjectRef = { resource: info.resource };
  if (info.namespace) ref.namespace = info.namespace;
  if (info.name) ref.name = info.name;
  if (info.apiGroup) ref.apiGroup = info.apiGroup;
  if (info.apiVersion) ref.apiVersion = info.apiVersion;
  if (info.subresource) ref.subresource = info.subresource;
  return ref;
}

export { microTime, microTimeAt } from "./micro_time.ts";

/** What changes between the stages of one call. */
export interface StageExtra {
  at: string;
  code?: number;
  message?: string;
  requestObject?: unknown;
  responseObject?: unknown;
  annotations?: Record<string, string>;
}

/** One stage's event; `base` is shared by all stages of a call. */
export function stageEvent(
  base: EventBase,
  stage: AuditStage,
  extra: StageExtra,
): AuditEvent {
  // Built in kube-apiserver's field order; the timestamps come last.
  const event = {
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: base.level,
    auditID: base.auditID,
    stage,
    requestURI: base.requestURI,
    verb: base.verb,
    user: base.user,
  } as AuditEvent;
  if (base.sourceIPs) event.sourceIPs = base.sourceIPs;
  if (base.userAgent) event.userAgent = base.userAgent;
  if (base.objectRef) event.objectRef = base.objectRef;
  if (extra.code !== undefined) {
    const status: AuditResponseStatus = { metadata: {}, code: extra.code };
    if (extra.code >= 400) {
      status.status = "Failure";
      if (extra.message) status.message = extra.message;
    }
    event.responseStatus = status;
  }
  if (extra.requestObject !== undefined) {
    event.requestObject = extra.requestObject;
  }
  if (extra.responseObject !== undefined) {
    event.responseObject = extra.responseObject;
  }
  event.requestReceivedTimestamp = base.requestReceivedTimestamp;
  event.stageTimestamp = extra.at;
  if (extra.annotations && Object.keys(extra.annotations).length > 0) {
    event.annotations = extra.annotations;
  }
  return event;
}

const decoder = new TextDecoder();

/**
 * The request body as an event's `requestObject`: JSON only (kube records
 * the decoded object; a protobuf or YAML body MCA cannot decode is left
 * out rather than recorded wrongly). With `omitManagedFields`, the
 * object's (and a list's items') `metadata.managedFields` are dropped.
 */
export function requestObject(
  body: Uint8Array | undefined,
  omitManagedFields: boolean,
): unknown {
  if (!body || body.length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(body));
  } catch {
    return undefined;
  }
  if (omitManagedFields) stripManagedFields(value);
  return value;
}

function stripManagedFields(value: unknown): void {
  if (typeof value !== "object" || value === null) return;
  const obj = value as Record<string, unknown>;
  const meta = obj.metadata as Record<string, unknown> | undefined;
  if (meta && typeof meta === "object") delete meta.managedFields;
  if (Array.isArray(obj.items)) obj.items.forEach(stripManagedFields);
}

/** The object's name from a JSON create body (kube fills objectRef.name so). */
export function bodyName(value: unknown): string | undefined {
  const meta = (value as { metadata?: { name?: unknown } } | undefined)
    ?.metadata;
  return typeof meta?.name === "string" && meta.name ? meta.name : undefined;
}
