/**
 * The Pod volumes the injector owns: the real service-account token (for
 * `mca` only), the fake service-account directory, the CA state and the wired
 * routing/clusters/policy objects.
 *
 * The real token is a projected volume built here, because the Pod's own is
 * switched off (`automountServiceAccountToken: false`) so that no app
 * container gets it mounted by the kubelet.
 *
 * @module
 */

import type { InjectOptions } from "./options.ts";
import type { JsonObject } from "./pod_json.ts";
import {
  CLUSTERS_VOLUME,
  MCA_SA_VOLUME,
  MCA_STATE_VOLUME,
  POLICY_VOLUME,
  REAL_SA_VOLUME,
  ROUTING_VOLUME,
  WIRED_VOLUMES,
} from "./names.ts";

function wiredVolumes(opts: Required<InjectOptions>): JsonObject[] {
  const volumes: JsonObject[] = [];
  if (opts.routingConfigMap) {
    volumes.push({
      name: ROUTING_VOLUME,
      configMap: { name: opts.routingConfigMap },
    });
  }
  if (opts.clustersSecret) {
    volumes.push({
      name: CLUSTERS_VOLUME,
      secret: { secretName: opts.clustersSecret },
    });
  }
  if (opts.policyConfigMap) {
    volumes.push({
      name: POLICY_VOLUME,
      configMap: { name: opts.policyConfigMap },
    });
  }
  return volumes;
}

function wantedVolumes(opts: Required<InjectOptions>): JsonObject[] {
  return [
    {
      name: REAL_SA_VOLUME,
      projected: {
        defaultMode: 420,
        sources: [
          {
            serviceAccountToken: { expirationSeconds: 3607, path: "token" },
          },
          {
            configMap: {
              name: "kube-root-ca.crt",
              items: [{ key: "ca.crt", path: "ca.crt" }],
            },
          },
          {
            downwardAPI: {
              items: [{
                path: "namespace",
                fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" },
              }],
            },
          },
        ],
      },
    },
    { name: MCA_SA_VOLUME, emptyDir: {} },
    {
      name: MCA_STATE_VOLUME,
      emptyDir: { medium: "Memory", sizeLimit: "1Mi" },
    },
    ...wiredVolumes(opts),
  ];
}

/**
 * Our volumes replace same-named ones; a wired volume (routing, clusters,
 * policy) no longer asked for is dropped, so re-injecting with other options
 * leaves no stale mount of another ConfigMap or Secret behind.
 */
export function withVolumes(
  volumes: JsonObject[],
  opts: Required<InjectOptions>,
): JsonObject[] {
  const wanted = new Map(
    wantedVolumes(opts).map((v) => [v.name as string, v]),
  );
  const out: JsonObject[] = [];
  const placed = new Set<string>();
  for (const volume of volumes) {
    const name = volume.name as string;
    const replacement = wanted.get(name);
    if (!replacement) {
      if (!WIRED_VOLUMES.includes(name)) out.push(volume);
    } else if (!placed.has(name)) {
      out.push(replacement);
      placed.add(name);
    }
  }
  for (const [name, volume] of wanted) {
    if (!placed.has(name)) out.push(volume);
  }
  return out;
}
