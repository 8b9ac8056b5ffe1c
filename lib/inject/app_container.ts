/**
 * How each app container is rewritten: pointed at the proxy on loopback and
 * at the fake service-account directory `mca` writes.
 *
 * Any mount that would shadow or expose the real service-account files, the
 * CA state or a wired volume is replaced, so an app can never read the real
 * token whatever its manifest asked for.
 *
 * @module
 */

import {
  MCA_SA_VOLUME,
  MCA_STATE_VOLUME,
  PROXY_HOST,
  PROXY_PORT,
  REAL_SA_VOLUME,
  SA_PATH,
  WIRED_VOLUMES,
} from "./names.ts";
import { type JsonObject, listOf } from "./pod_json.ts";

/** Points one app container at the proxy and at the fake SA directory. */
export function redirectContainer(container: JsonObject): JsonObject {
  const out = { ...container };
  out.env = withEnv(listOf(out.env, `env of container ${out.name}`), {
    KUBERNETES_SERVICE_HOST: PROXY_HOST,
    KUBERNETES_SERVICE_PORT: String(PROXY_PORT),
  });
  out.volumeMounts = withSaMount(
    listOf(out.volumeMounts, `volumeMounts of container ${out.name}`),
  );
  return out;
}

function withEnv(
  env: JsonObject[],
  wanted: Record<string, string>,
): JsonObject[] {
  const out: JsonObject[] = [];
  const seen = new Set<string>();
  for (const entry of env) {
    const name = entry.name;
    if (typeof name === "string" && name in wanted) {
      if (seen.has(name)) continue;
      seen.add(name);
      out.push({ name, value: wanted[name] });
    } else {
      out.push(entry);
    }
  }
  for (const [name, value] of Object.entries(wanted)) {
    if (!seen.has(name)) out.push({ name, value });
  }
  return out;
}

/** True for a mount that would shadow or expose service-account files. */
function isSaMount(mount: JsonObject): boolean {
  const path = typeof mount.mountPath === "string"
    ? mount.mountPath.replace(/\/+$/, "")
    : "";
  return path === SA_PATH || path.startsWith(SA_PATH + "/") ||
    mount.name === REAL_SA_VOLUME || mount.name === MCA_STATE_VOLUME ||
    WIRED_VOLUMES.includes(mount.name as string);
}

function withSaMount(mounts: JsonObject[]): JsonObject[] {
  const ours = { name: MCA_SA_VOLUME, mountPath: SA_PATH, readOnly: true };
  const out: JsonObject[] = [];
  let placed = false;
  for (const mount of mounts) {
    if (!isSaMount(mount)) {
      out.push(mount);
    } else if (!placed) {
      out.push(ours);
      placed = true;
    }
  }
  if (!placed) out.push(ours);
  return out;
}
