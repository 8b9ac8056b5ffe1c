/**
 * `SelfSubjectAccessReview` (`kubectl auth can-i`, client-go's
 * `SelfSubjectAccessReviews().Create`) answered by the clusters that would
 * serve the call it asks about, not by the cluster the review itself is
 * routed to: the review's `resourceAttributes` are planned like that call
 * (namespace, resource, verb, name). One cluster: its answer (with the
 * namespace mapped as the rule says). A spread set: every cluster of it is
 * asked, and the call is allowed only if every one allows it (a LIST needs
 * them all; a create may go to any). MCA's call policy is applied too: a
 * cluster it denies does not allow. A review that does not parse (e.g.
 * protobuf) is routed as itself.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { parseRequestInfo, type RequestInfo } from "../kube/request_info.ts";
import type { Plan } from "../routing/router.ts";
import type { Dispatched, DispatchOptions } from "./dispatch_options.ts";
import { MAX_BODY, parseBody, readRequest } from "./request_body.ts";
import { writeStatus } from "../kube/status.ts";
import { applyPolicy } from "./policy_step.ts";
import { type FanoutCall, sendJson } from "./fanout_call.ts";
import { type Answer, ask } from "./locate.ts";
import { parseJsonBytes } from "./answer_rewrite.ts";
import { decodeProtobufReview } from "../kube/protobuf_review.ts";

type Json = Record<string, unknown>;

/** True for a `SelfSubjectAccessReview` create. */
export function isAccessReview(info: RequestInfo): boolean {
  return info.isResourceRequest && info.verb === "create" &&
    info.apiGroup === "authorization.k8s.io" &&
    info.resource === "selfsubjectaccessreviews";
}

/** What the dispatcher lends a review: its own path for the fallback, and merged calls. */
export interface ReviewHooks {
  options: DispatchOptions;
  /** A merged call to these clusters (the dispatcher's `fanoutCall`). */
  callFor(plan: Plan, clusters: string[]): FanoutCall;
  /** Serves the review as an ordinary call, with its body already read. */
  asItself(body: Uint8Array): Promise<Dispatched>;
}

/** The call a review asks about, as a RequestInfo the router can plan. */
export function reviewedCall(review: unknown): RequestInfo | undefined {
  const spec = (review as Json | undefined)?.spec as Json | undefined;
  const attrs = spec?.resourceAttributes as Json | undefined;
  const text = (key: string) =>
    typeof attrs?.[key] === "string" ? attrs[key] as string : "";
  if (!attrs) {
    const nonResource = spec?.nonResourceAttributes as Json | undefined;
    if (typeof nonResource?.path !== "string") return undefined;
    return parseRequestInfo("GET", nonResource.path);
  }
  if (text("resource") === "" || text("verb") === "") return undefined;
  const version = text("version") || "v1";
  const path = [
    text("group") ? `/apis/${text("group")}/${version}` : `/api/${version}`,
    text("namespace") ? `/namespaces/${text("namespace")}` : "",
    `/${text("resource")}`,
    text("name") ? `/${text("name")}` : "",
    text("name") && text("subresource") ? `/${text("subresource")}` : "",
  ].join("");
  return { ...parseRequestInfo("GET", path), verb: text("verb") };
}

/** Answers a SelfSubjectAccessReview by the clusters of the call it asks about. */
export async function reviewAccess(
  req: IncomingMessage,
  res: ServerResponse,
  hooks: ReviewHooks,
): Promise<Dispatched> {
  const body = await readRequest(req);
  if (body === undefined) {
    return {
      cluster: "none",
      outcome: writeStatus(
        res,
        413,
        "RequestEntityTooLarge",
        `mca: an access review over ${MAX_BODY} bytes cannot be routed by what it asks; send a smaller review`,
      ),
    };
  }
  const review = readReview(body, String(req.headers["content-type"] ?? ""));
  const asked = reviewedCall(review);
  if (!asked) return await hooks.asItself(body);
  const { planner } = hooks.options;
  const plan = setOf(planner.plan(asked, {}, { advance: false }), asked, hooks);
  const checked = applyPolicy(plan, asked, hooks.options);
  hooks.options.observation?.decided?.(checked.decision);
  const clusters = planned(plan);
  const denied = clusters.filter((c) => !checked.decision.clusters.includes(c));
  const mapped = plan.namespace && asked.namespace ? plan.namespace : undefined;
  const sent = asJson(review as Json, mapped);
  const call = hooks.callFor(plan, clusters);
  call.headers["content-type"] = "application/json"; // the review is sent as JSON
  const answers = await Promise.all(
    clusters.filter((c) => !denied.includes(c)).map((c) =>
      ask(call, c, { method: "POST", target: req.url ?? "/", body: sent })
    ),
  );
  const outcome = combine(res, {
    review: review as Json,
    answers,
    clusters: clusters.filter((c) => !denied.includes(c)),
    denied,
    namespace: mapped ? asked.namespace : undefined,
  });
  return {
    cluster: clusters.join("+"),
    outcome: { ...outcome, bytesIn: body.length },
  };
}

/**
 * A create on a spread set plans one cluster by turn, but may go to any of
 * them: the review asks the whole set (the set a LIST of it would ask).
 */
function setOf(plan: Plan, asked: RequestInfo, hooks: ReviewHooks): Plan {
  if (plan.kind !== "one" || !plan.decorate || plan.fallbacks) return plan;
  const all = hooks.options.planner.plan(
    { ...asked, verb: "list", name: "", subresource: "" },
    {},
    { advance: false },
  );
  return all.kind === "fanout" && all.rule === plan.rule ? all : plan;
}

function planned(plan: Plan): string[] {
  if (plan.kind === "one") return [plan.cluster];
  return [
    ...plan.clusters,
    ...(plan.kind === "fanout" ? plan.missing : plan.missing ?? []),
  ];
}

/** A review as JSON (a protobuf one is answered in JSON too), its namespace mapped. */
function asJson(review: Json, namespace: string | undefined): Uint8Array {
  const copy: Json = {
    kind: "SelfSubjectAccessReview",
    apiVersion: "authorization.k8s.io/v1",
    ...structuredClone(review),
  };
  const attrs = (copy.spec as Json).resourceAttributes as Json | undefined;
  if (namespace && attrs) attrs.namespace = namespace;
  return new TextEncoder().encode(JSON.stringify(copy));
}

/** The review in the body: JSON, YAML or (its attributes) protobuf. */
function readReview(body: Uint8Array, contentType: string): unknown {
  return contentType.includes("protobuf")
    ? decodeProtobufReview(body)
    : parseBody(body, contentType);
}

/** Each cluster that does not allow the call, and why. */
function refusals(
  reviews: Array<Json | undefined>,
  args: { clusters: string[]; denied: string[] },
): string[] {
  const noes = args.denied.map((c) =>
    `cluster ${c}: mca's call policy denies it`
  );
  reviews.forEach((r, i) => {
    const status = r?.status as Json | undefined;
    if (r === undefined) {
      noes.push(`cluster ${args.clusters[i]}: cannot be asked`);
    } else if (status?.allowed !== true) {
      noes.push(
        `cluster ${args.clusters[i]}: ${
          String(status?.reason ?? "not allowed")
        }`,
      );
    }
  });
  return noes;
}

/** Every cluster is denied by mca's call policy: nobody was asked, not allowed. */
function policyDenied(
  res: ServerResponse,
  args: { review: Json; clusters: string[]; denied: string[] },
) {
  const answer = {
    kind: "SelfSubjectAccessReview",
    apiVersion: "authorization.k8s.io/v1",
    ...args.review,
    status: { allowed: false, reason: `mca: ${refusals([], args).join("; ")}` },
  };
  return { status: 201, bytesIn: 0, bytesOut: sendJson(res, 201, answer) };
}

/** Allowed only if every cluster asked allows it; a cluster that cannot be asked does not. */
function combine(
  res: ServerResponse,
  args: {
    review: Json;
    answers: Array<Answer | undefined>;
    clusters: string[];
    denied: string[];
    namespace?: string;
  },
) {
  const refused = args.answers.find((a) => a !== undefined && a.status >= 300);
  if (refused) {
    res.writeHead(refused.status, refused.headers).end(refused.body);
    return {
      status: refused.status,
      bytesIn: 0,
      bytesOut: refused.body.length,
    };
  }
  const reviews = args.answers.map((a) =>
    a ? parseJsonBytes(a.body) as Json | undefined : undefined
  );
  const at = reviews.findIndex((r) => r !== undefined);
  const first = reviews[at];
  if (!first && args.answers.length === 0) return policyDenied(res, args);
  if (!first) {
    return writeStatus(
      res,
      503,
      "ServiceUnavailable",
      "mca: no cluster answered the access review",
    );
  }
  const noes = refusals(reviews, args);
  const answer = reviews.length === 1 && noes.length === 0 ? first : {
    ...first,
    status: noes.length === 0 ? first.status : {
      allowed: false,
      reason: `mca: not allowed on every cluster of the set (${
        noes.join("; ")
      })`,
    },
  };
  const spec = answer.spec as Json | undefined;
  const attrs = spec?.resourceAttributes as Json | undefined;
  if (args.namespace && attrs) attrs.namespace = args.namespace;
  const code = args.answers[at]!.status;
  return { status: code, bytesIn: 0, bytesOut: sendJson(res, code, answer) };
}
