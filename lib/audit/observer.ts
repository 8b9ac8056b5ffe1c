/**
 * The audit log as an {@linkcode Observer}: each call is matched against the
 * audit policy once, at `start`; at level `None` nothing more is done, so
 * unaudited calls cost one policy evaluation. Otherwise the call's stages
 * become `audit.k8s.io/v1` events: `RequestReceived` at once,
 * `ResponseStarted` when a long-running call (watch, exec/attach/
 * port-forward) gets its response head, `ResponseComplete` at the end, with
 * annotations for what only MCA knows (clusters, routing rule, policy
 * verdict, each upstream's `Audit-Id`).
 *
 * @module
 */

import type {
  CallDecision,
  CallEnd,
  CallObservation,
  CallStart,
  Observer,
} from "../observe/observer.ts";
import { annotations, withOutcomes } from "./annotations.ts";
import type { AuditBackend } from "./backend.ts";
import {
  bodyName,
  type EventBase,
  microTimeAt,
  objectRef,
  requestObject,
  serviceAccountUser,
} from "./event.ts";
import {
  CallFieldsCache,
  type StageExtra,
  stageWriter,
} from "./stage_writer.ts";
import {
  type AuditAttributes,
  type AuditConfig,
  type AuditPolicy,
  type AuditStage,
  evaluateAuditPolicy,
} from "./policy.ts";

/**
 * The call start as audit reads it: the raw request-target (path and query,
 * for `requestURI`) and the app's address (for `sourceIPs`). Without a
 * target `requestURI` falls back to the path.
 */
export type AuditCallStart = CallStart;

const NOOP: CallObservation = { end() {} };

/** An observer writing audit events for `policy` to `backend`. */
export function auditObserver(
  policy: AuditPolicy,
  backend: AuditBackend,
): Observer {
  // the identity object lasts until the token changes: so does its user
  let identity: CallStart["identity"];
  let user: EventBase["user"] = {};
  const fields = new CallFieldsCache();
  return {
    start(call: AuditCallStart): CallObservation {
      if (call.identity !== identity) {
        identity = call.identity;
        user = identity ? serviceAccountUser(identity) : {};
      }
      const attrs: AuditAttributes = {
        ...call.info,
        user: user.username
          ? { username: user.username, groups: user.groups ?? [] }
          : undefined,
      };
      const config = evaluateAuditPolicy(policy, attrs);
      if (config.level === "None") return NOOP;
      return auditCall(call, { config, backend, user, fields });
    },
  };
}

interface CallContext {
  config: AuditConfig;
  backend: AuditBackend;
  user: EventBase["user"];
  fields: CallFieldsCache;
}

/** The fields every event of the call repeats, fixed when it starts. */
function eventBase(call: AuditCallStart, ctx: CallContext): EventBase {
  return {
    level: ctx.config.level,
    auditID: crypto.randomUUID(),
    requestURI: call.target ?? call.info.path,
    verb: call.info.verb,
    user: ctx.user,
    sourceIPs: call.remoteAddr ? [call.remoteAddr] : undefined,
    userAgent: call.userAgent,
    objectRef: objectRef(call.info),
    requestReceivedTimestamp: stamp(call, call.startedAt),
  };
}

/** How much of a request body the audit keeps: bigger ones are left out. */
export const AUDIT_BODY_BYTES = 256 * 1024;

function recordsBody(config: AuditConfig): boolean {
  return config.level === "Request" || config.level === "RequestResponse";
}

/**
 * The request body, at the levels that record it. A body over
 * {@linkcode AUDIT_BODY_BYTES} is left out whole (a cut JSON object would
 * not parse), like one that is not JSON.
 */
function auditedBody(config: AuditConfig, end: CallEnd): unknown {
  if (!recordsBody(config) || end.requestBodyCut) return undefined;
  if ((end.requestBody?.length ?? 0) > AUDIT_BODY_BYTES) return undefined;
  return requestObject(end.requestBody, config.omitManagedFields);
}

/**
 * The answer's body at `RequestResponse`: JSON only, never a cut one (an
 * answer over {@linkcode AUDIT_BODY_BYTES}, a watch or a merged answer is
 * left out).
 */
function auditedResponse(config: AuditConfig, end: CallEnd): unknown {
  if (config.level !== "RequestResponse" || end.responseBodyCut) {
    return undefined;
  }
  return requestObject(end.responseBody, config.omitManagedFields);
}

function auditCall(call: AuditCallStart, ctx: CallContext): CallObservation {
  const { config, backend } = ctx;
  const clock = () => stamp(call, performance.now());
  const base = eventBase(call, ctx);
  const write = stageWriter(base, ctx.fields);
  const emit = (stage: AuditStage, extra: StageExtra) => {
    if (!config.omitStages.has(stage)) backend.emit(write(stage, extra));
  };
  emit("RequestReceived", { at: base.requestReceivedTimestamp });
  const longRunning = call.upgrade || call.info.verb === "watch";
  let decision: CallDecision | undefined;
  let responded = false;
  const auditIds: Array<[string, string]> = [];
  return {
    requestBodyBytes: recordsBody(config) ? AUDIT_BODY_BYTES : undefined,
    responseBodyBytes: config.level === "RequestResponse"
      ? AUDIT_BODY_BYTES
      : undefined,
    decided(d) {
      decision = d;
    },
    upstream(start) {
      return {
        response(answer) {
          if (answer.auditId) auditIds.push([start.cluster, answer.auditId]);
          if (longRunning && !responded) {
            responded = true;
            emit("ResponseStarted", {
              at: clock(),
              code: answer.status,
              annotations: annotations(decision, auditIds),
            });
          }
        },
        failed() {},
      };
    },
    end(end: CallEnd) {
      if (end.auditId && !auditIds.some(([, id]) => id === end.auditId)) {
        auditIds.push([end.cluster, end.auditId]);
      }
      const body = auditedBody(config, end);
      completeRef(base, call, end);
      emit("ResponseComplete", {
        at: clock(),
        code: end.status,
        message: end.status >= 400 ? end.error : undefined,
        requestObject: body,
        responseObject: auditedResponse(config, end),
        annotations: withOutcomes(annotations(decision, auditIds), end),
      });
    },
  };
}

/** kube names a created object in objectRef from its body. */
function completeRef(base: EventBase, call: CallStart, end: CallEnd): void {
  if (!base.objectRef || base.objectRef.name || call.info.verb !== "create") {
    return;
  }
  const name = bodyName(requestObject(end.requestBody, false));
  if (name) base.objectRef = { ...base.objectRef, name };
}

function stamp(call: CallStart, at: number): string {
  return microTimeAt(call.receivedAt.getTime() + (at - call.startedAt));
}
