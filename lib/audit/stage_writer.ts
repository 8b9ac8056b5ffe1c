/**
 * Each stage's event of one call, serialised to exactly the text
 * `JSON.stringify(stageEvent(base, stage, extra))` gives (the tests hold it
 * to that), without building the event object. The fields a workload's
 * calls repeat — `requestURI` to `objectRef` — are serialised once and
 * reused while the calls repeat; per event only the ids, the status, the
 * timestamps and the annotations are new text.
 *
 * Measured on the way (ADR 0021): writing the events straight into bytes,
 * piece by piece, cost more CPU than this text and one `encodeInto` of it
 * at the log buffer — each small piece's typed-array view and copy cost
 * more than the concatenations they replaced.
 *
 * @module
 */

import type {
  AuditObjectRef,
  AuditResponseStatus,
  AuditUser,
  EventBase,
  StageExtra,
} from "./event.ts";
import type { AuditLevel, AuditStage } from "./policy.ts";

export type { StageExtra } from "./event.ts";

/** The user's JSON, once per user object (one per workload identity). */
const userJsons = new WeakMap<AuditUser, string>();

function userJson(user: AuditUser): string {
  let json = userJsons.get(user);
  if (json === undefined) {
    json = JSON.stringify(user);
    userJsons.set(user, json);
  }
  return json;
}

function sameRef(a?: AuditObjectRef, b?: AuditObjectRef): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return a.resource === b.resource && a.namespace === b.namespace &&
    a.name === b.name && a.apiGroup === b.apiGroup &&
    a.apiVersion === b.apiVersion && a.subresource === b.subresource;
}

function sameIps(a?: string[], b?: string[]): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) {
    return false;
  }
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The serialised fields from `requestURI` to `objectRef` of the last call
 * written, reused while the next call has the same ones (a workload
 * repeats the same few calls). One per observer; a call that differs
 * replaces it.
 */
export class CallFieldsCache {
  #key: EventBase | undefined;
  #json = "";

  /** The fields' JSON for `base` (a leading comma, no braces). */
  get(base: EventBase): string {
    const k = this.#key;
    if (
      k === undefined || k.requestURI !== base.requestURI ||
      k.verb !== base.verb || k.user !== base.user ||
      k.userAgent !== base.userAgent || !sameIps(k.sourceIPs, base.sourceIPs) ||
      !sameRef(k.objectRef, base.objectRef)
    ) {
      this.#key = {
        ...base,
        objectRef: base.objectRef && { ...base.objectRef },
      };
      this.#json = callFields(base);
    }
    return this.#json;
  }
}

function callFields(base: EventBase): string {
  const q = JSON.stringify;
  return `,"requestURI":${q(base.requestURI)},"verb":${q(base.verb)},"user":${
    userJson(base.user)
  }` +
    (base.sourceIPs ? `,"sourceIPs":${q(base.sourceIPs)}` : "") +
    (base.userAgent ? `,"userAgent":${q(base.userAgent)}` : "") +
    (base.objectRef ? `,"objectRef":${q(base.objectRef)}` : "");
}

const HEADS = new Map<AuditLevel, string>();

/** The text every event of `level` starts with, up to the auditID's value. */
function head(level: AuditLevel): string {
  let text = HEADS.get(level);
  if (text === undefined) {
    text = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":${
      JSON.stringify(level)
    },"auditID":`;
    HEADS.set(level, text);
  }
  return text;
}

/** A serialiser for the stages of one call. */
export function stageWriter(
  base: EventBase,
  cache: CallFieldsCache = new CallFieldsCache(),
): (stage: AuditStage, extra: StageExtra) => string {
  const q = JSON.stringify;
  const start = head(base.level) + q(base.auditID) + ',"stage":';
  return (stage, extra) => {
    let out = start + q(stage) + cache.get(base);
    if (extra.code !== undefined) out += status(extra.code, extra.message);
    if (extra.requestObject !== undefined) {
      out += `,"requestObject":${q(extra.requestObject)}`;
    }
    if (extra.responseObject !== undefined) {
      out += `,"responseObject":${q(extra.responseObject)}`;
    }
    out += `,"requestReceivedTimestamp":${
      q(base.requestReceivedTimestamp)
    },"stageTimestamp":${q(extra.at)}`;
    if (extra.annotations) {
      for (const _ in extra.annotations) {
        out += `,"annotations":${q(extra.annotations)}`;
        break;
      }
    }
    return out + "}";
  };
}

function status(code: number, message: string | undefined): string {
  if (code < 400) return `,"responseStatus":{"metadata":{},"code":${code}}`;
  // kube-apiserver's field order: metadata, code, status, message
  const s: AuditResponseStatus = { metadata: {}, code, status: "Failure" };
  if (message) s.message = message;
  return `,"responseStatus":${JSON.stringify(s)}`;
}
