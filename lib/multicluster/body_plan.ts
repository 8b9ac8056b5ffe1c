/**
 * Planning a call again from its body: the part of "decide" that needs the
 * object itself (its labels for a rule that matches on them, the cluster
 * its marks name on a spread set, its namespace when the rule maps it),
 * JSON or protobuf alike. A body MCA cannot read when it must rewrite it is
 * refused, never sent on half-converted.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import type { RequestInfo } from "../kube/request_info.ts";
import type { Plan } from "../routing/router.ts";
import type { Outcome } from "../proxy/transport.ts";
import { ProtobufError } from "../kube/protobuf_object.ts";
import { writeStatus } from "../kube/status.ts";
import {
  MAX_BODY,
  parseBody,
  readRequest,
  serializeBody,
} from "./request_body.ts";
import {
  objectLabels,
  rewriteBodyNamespace,
  undecorateObject,
} from "./rewrite.ts";
import { parseJsonBytes } from "./answer_rewrite.ts";
import { pinToObject } from "./pinning.ts";
import type { DispatchOptions } from "./dispatch_options.ts";

/** The plan made with the body, the body as it goes upstream, or the answer already sent. */
export interface BodyPlan {
  plan: Plan;
  body?: Uint8Array;
  answered?: Outcome;
}

/**
 * Reads the body and plans again with what it says (labels, the cluster it
 * is pinned to), mapping its namespace when the rule says so. Answers 413
 * (too large to route by content), 400 (an unreadable protobuf body) or 409
 * (an object of two clusters) itself.
 */
export async function planFromBody(
  req: IncomingMessage,
  res: ServerResponse,
  args: { info: RequestInfo; look: Plan; options: DispatchOptions },
): Promise<BodyPlan> {
  const { info, look, options } = args;
  const body = await readRequest(req);
  if (body === undefined) {
    const answered = writeStatus(
      res,
      413,
      "RequestEntityTooLarge",
      `mca: request bodies over ${MAX_BODY} bytes cannot be routed by content`,
    );
    return { plan: look, answered };
  }
  const contentType = String(req.headers["content-type"] ?? "");
  let parsed: unknown;
  try {
    parsed = parseBody(body, contentType);
  } catch (error) {
    if (!(error instanceof ProtobufError)) throw error;
    return { plan: look, answered: unreadable(res, error) };
  }
  if (parsed === undefined) {
    // nothing to route by: a spread set still takes its turn
    const plan = look.kind === "one" && look.decorate
      ? options.planner.plan(info)
      : look;
    return { plan, body };
  }
  const objectCluster = undecorateObject(parsed);
  const pinned = pinToObject(
    options.planner.plan(info, {
      objectLabels: objectLabels(parsed),
      objectCluster,
    }),
    objectCluster,
  );
  if ("conflict" in pinned) {
    const answered = writeStatus(res, 409, "Conflict", pinned.conflict);
    return { plan: look, answered };
  }
  if (pinned.namespace && info.namespace) {
    rewriteBodyNamespace(parsed, info.namespace, pinned.namespace);
  }
  return { plan: pinned, body: serializeBody(parsed, contentType) };
}

/**
 * A protobuf body MCA must rewrite (its marks, its namespace) but cannot
 * read: refused as kube-apiserver refuses a body it cannot decode (400),
 * rather than sent on half-converted.
 */
function unreadable(res: ServerResponse, error: ProtobufError): Outcome {
  return writeStatus(
    res,
    400,
    "BadRequest",
    `mca: the protobuf request body cannot be read (${error.message}); this call needs it rewritten: send a valid body, or send it as JSON`,
  );
}

/**
 * Where a create of the object a by-name write names would go (an apply of
 * an object no cluster holds creates it): the rule's next turn, planned
 * with the body's labels; undefined when that is outside the call's set.
 */
export function createTurn(
  info: RequestInfo,
  args: { set: string[]; body?: Uint8Array; options: DispatchOptions },
): string | undefined {
  const parsed = args.body && parseJsonBytes(args.body);
  const create = args.options.planner.plan(
    { ...info, verb: "create", name: "", subresource: "", parts: [] },
    parsed ? { objectLabels: objectLabels(parsed) } : {},
  );
  return create.kind === "one" && args.set.includes(create.cluster)
    ? create.cluster
    : undefined;
}
