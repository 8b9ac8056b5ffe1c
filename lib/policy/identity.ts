/**
 * The workload's identity, from the claims of its real service-account
 * token (a JWT the kubelet projected for this Pod). The signature is not
 * checked: the token is the Pod's own, read from its own volume; only the
 * API server's verdict on it matters for access. The token itself is never
 * kept, logged or returned.
 *
 * @module
 */

import type { WorkloadIdentity } from "../observe/observer.ts";

function claims(token: string): Record<string, unknown> | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    const value = JSON.parse(json);
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The identity a token's claims name, or undefined when it is not a SA JWT. */
export function identityOf(token: string): WorkloadIdentity | undefined {
  const c = claims(token);
  const k8s = c?.["kubernetes.io"] as
    | Record<string, Record<string, string> | string>
    | undefined;
  if (
    k8s && typeof k8s.namespace === "string" &&
    typeof k8s.serviceaccount === "object"
  ) {
    const namespace = k8s.namespace;
    const serviceAccount = k8s.serviceaccount.name;
    const pod = typeof k8s.pod === "object" ? k8s.pod : undefined;
    if (typeof serviceAccount !== "string") return undefined;
    return {
      username: `system:serviceaccount:${namespace}:${serviceAccount}`,
      namespace,
      serviceAccount,
      podName: pod?.name,
      podUid: pod?.uid,
    };
  }
  const sub = c?.sub;
  const m = typeof sub === "string"
    ? sub.match(/^system:serviceaccount:([^:]+):([^:]+)$/)
    : null;
  if (!m) return undefined;
  return { username: sub as string, namespace: m[1], serviceAccount: m[2] };
}
