import assert from "node:assert/strict";
import fc from "fast-check";
import { podSpec } from "../support/pod_arbitraries.ts";
import {
  InjectError,
  injectPodSpec,
  isMcaImage,
  type JsonObject,
  MCA_SA_PATH,
  MCA_SA_VOLUME,
  MCA_STATE_VOLUME,
  REAL_SA_VOLUME,
  SA_PATH,
} from "../../lib/inject/pod_spec.ts";
import { propertyRuns } from "../support/property.ts";

type C = JsonObject & { name: string };

function containersOf(spec: JsonObject, key: string): C[] {
  return (spec[key] ?? []) as C[];
}

function envOf(c: JsonObject): JsonObject[] {
  return (c.env ?? []) as JsonObject[];
}

function mountsOf(c: JsonObject): JsonObject[] {
  return (c.volumeMounts ?? []) as JsonObject[];
}

function volumesOf(spec: JsonObject): JsonObject[] {
  return (spec.volumes ?? []) as JsonObject[];
}

function basicSpec(): JsonObject {
  return { containers: [{ name: "app", image: "busybox" }] };
}

/** Every rule that must hold on any injected spec. */
function assertInjected(out: JsonObject, image = "mca:latest"): void {
  assert.equal(out.automountServiceAccountToken, false);
  const inits = containersOf(out, "initContainers");
  assert.equal(inits[0].name, "mca");
  assert.equal(inits[0].image, image);
  assert.equal(inits[0].restartPolicy, "Always");
  assert.equal(inits.filter((c) => c.name === "mca").length, 1);
  assert.equal(
    containersOf(out, "containers").filter((c) => c.name === "mca").length,
    0,
  );
  assert.deepEqual(mountsOf(inits[0]).slice(0, 2), [
    { name: REAL_SA_VOLUME, mountPath: SA_PATH, readOnly: true },
    { name: MCA_SA_VOLUME, mountPath: MCA_SA_PATH },
  ]);
  assert.equal(inits[0].env, undefined, "mca gets no env overrides");
  const apps = [...inits.slice(1), ...containersOf(out, "containers")];
  for (const c of apps) {
    const env = envOf(c);
    const host = env.filter((e) => e.name === "KUBERNETES_SERVICE_HOST");
    const port = env.filter((e) => e.name === "KUBERNETES_SERVICE_PORT");
    assert.deepEqual(host, [{
      name: "KUBERNETES_SERVICE_HOST",
      value: "127.0.0.1",
    }]);
    assert.deepEqual(port, [{
      name: "KUBERNETES_SERVICE_PORT",
      value: "6443",
    }]);
    const sa = mountsOf(c).filter((m) =>
      String(m.mountPath).replace(/\/+$/, "") === SA_PATH
    );
    assert.deepEqual(sa, [{
      name: MCA_SA_VOLUME,
      mountPath: SA_PATH,
      readOnly: true,
    }]);
    assert.ok(
      !mountsOf(c).some((m) => m.name === REAL_SA_VOLUME),
      `container ${c.name} must not mount the real SA`,
    );
  }
  const volumes = volumesOf(out);
  for (const name of [REAL_SA_VOLUME, MCA_SA_VOLUME, MCA_STATE_VOLUME]) {
    assert.equal(volumes.filter((v) => v.name === name).length, 1, name);
  }
  const real = volumes.find((v) => v.name === REAL_SA_VOLUME)!;
  assert.deepEqual(real.projected, {
    defaultMode: 420,
    sources: [
      { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
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
  });
  assert.deepEqual(volumes.find((v) => v.name === MCA_SA_VOLUME), {
    name: MCA_SA_VOLUME,
    emptyDir: {},
  });
}

Deno.test("inject: a minimal Pod gets every rule", () => {
  const out = injectPodSpec(basicSpec());
  assertInjected(out);
  assert.equal(containersOf(out, "initContainers").length, 1);
});

Deno.test("inject: does not modify its input", () => {
  const spec = basicSpec();
  const before = structuredClone(spec);
  injectPodSpec(spec);
  assert.deepEqual(spec, before);
});

Deno.test("inject: app env already set to other values is updated in place", () => {
  const out = injectPodSpec({
    containers: [{
      name: "app",
      env: [
        { name: "A", value: "1" },
        { name: "KUBERNETES_SERVICE_PORT", value: "443" },
        { name: "KUBERNETES_SERVICE_HOST", valueFrom: { fieldRef: {} } },
        { name: "B", value: "2" },
        { name: "KUBERNETES_SERVICE_HOST", value: "10.0.0.1" },
      ],
    }],
  });
  assertInjected(out);
  assert.deepEqual(envOf(containersOf(out, "containers")[0]), [
    { name: "A", value: "1" },
    { name: "KUBERNETES_SERVICE_PORT", value: "6443" },
    { name: "KUBERNETES_SERVICE_HOST", value: "127.0.0.1" },
    { name: "B", value: "2" },
  ]);
});

Deno.test("inject: an existing mount at the SA path is replaced, others kept", () => {
  const out = injectPodSpec({
    containers: [{
      name: "app",
      volumeMounts: [
        { name: "data", mountPath: "/data" },
        { name: "kube-api-access-abcde", mountPath: SA_PATH + "/" },
        { name: "token-only", mountPath: SA_PATH + "/token" },
        { name: REAL_SA_VOLUME, mountPath: "/elsewhere" },
        { name: "logs", mountPath: "/logs" },
      ],
    }],
  });
  assertInjected(out);
  assert.deepEqual(mountsOf(containersOf(out, "containers")[0]), [
    { name: "data", mountPath: "/data" },
    { name: MCA_SA_VOLUME, mountPath: SA_PATH, readOnly: true },
    { name: "logs", mountPath: "/logs" },
  ]);
});

Deno.test("inject: volumes with our names but wrong content are corrected", () => {
  const out = injectPodSpec({
    containers: [{ name: "app" }],
    volumes: [
      { name: MCA_SA_VOLUME, hostPath: { path: "/etc" } },
      { name: "data", emptyDir: {} },
      {
        name: REAL_SA_VOLUME,
        projected: { sources: [{ serviceAccountToken: { path: "x" } }] },
      },
      { name: MCA_SA_VOLUME, emptyDir: { medium: "Memory" } },
    ],
  });
  assertInjected(out);
  assert.deepEqual(volumesOf(out).map((v) => v.name), [
    MCA_SA_VOLUME,
    "data",
    REAL_SA_VOLUME,
    MCA_STATE_VOLUME,
  ]);
});

Deno.test("inject: several init containers all get redirected, mca first", () => {
  const out = injectPodSpec({
    initContainers: [
      { name: "migrate", image: "migrate" },
      { name: "mca", image: "mca:0.0.1" },
      { name: "warm", image: "warm", restartPolicy: "Always" },
    ],
    containers: [{ name: "app" }, { name: "sidecar" }],
  });
  assertInjected(out);
  assert.deepEqual(
    containersOf(out, "initContainers").map((c) => c.name),
    ["mca", "migrate", "warm"],
  );
  assert.equal(containersOf(out, "initContainers")[2].restartPolicy, "Always");
});

Deno.test("inject: mca in the wrong position, duplicated, old image -> one correct mca", () => {
  const out = injectPodSpec({
    initContainers: [
      { name: "setup" },
      { name: "mca", image: "registry.example/mca:0.1" },
      { name: "mca", image: "mca:old", env: [{ name: "X", value: "y" }] },
    ],
    containers: [{ name: "app" }, { name: "mca", image: "mca:older" }],
  }, { image: "registry.example/mca:2.0" });
  assertInjected(out, "registry.example/mca:2.0");
  assert.deepEqual(
    containersOf(out, "initContainers").map((c) => c.name),
    ["mca", "setup"],
  );
  assert.deepEqual(containersOf(out, "containers").map((c) => c.name), ["app"]);
});

Deno.test("inject: a foreign container named mca in spec.containers is refused", () => {
  assert.throws(
    () =>
      injectPodSpec({
        containers: [{ name: "mca", image: "docker.io/library/nginx:1" }],
      }),
    (e: Error) => e instanceof InjectError && /named "mca"/.test(e.message),
  );
});

Deno.test("inject: hostNetwork Pods are refused with the reason", () => {
  assert.throws(
    () => injectPodSpec({ hostNetwork: true, containers: [{ name: "a" }] }),
    (e: Error) =>
      e instanceof InjectError && /hostNetwork/.test(e.message) &&
      /loopback/.test(e.message),
  );
});

Deno.test("inject: shareProcessNamespace Pods are refused (token via /proc)", () => {
  assert.throws(
    () =>
      injectPodSpec({
        shareProcessNamespace: true,
        containers: [{ name: "a" }],
      }),
    (e: Error) =>
      e instanceof InjectError && /shareProcessNamespace/.test(e.message) &&
      /\/proc/.test(e.message) && !e.message.includes("\n"),
  );
  // false (the default) is fine.
  injectPodSpec({ shareProcessNamespace: false, containers: [{ name: "a" }] });
});

Deno.test("inject: malformed lists get a clear error", () => {
  assert.throws(
    () => injectPodSpec({ containers: { name: "a" } }),
    /spec.containers must be a list/,
  );
  assert.throws(
    () => injectPodSpec({ containers: [{ name: "a", env: "x" }] }),
    /env of container a must be a list/,
  );
});

Deno.test("inject: hardening and overrides of the mca container", () => {
  const def = containersOf(injectPodSpec(basicSpec()), "initContainers")[0];
  assert.deepEqual(def.securityContext, {
    runAsNonRoot: true,
    runAsUser: 65532,
    runAsGroup: 65532,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  });
  assert.deepEqual(def.resources, {
    requests: { cpu: "10m", memory: "96Mi" },
    limits: { memory: "512Mi" },
  });
  assert.deepEqual(def.startupProbe, {
    exec: { command: ["/usr/local/bin/mca", "--probe"] },
    periodSeconds: 1,
    timeoutSeconds: 5,
    failureThreshold: 60,
  });
  assert.equal(def.imagePullPolicy, undefined);
  const custom = containersOf(
    injectPodSpec(basicSpec(), {
      image: "r/mca:1",
      imagePullPolicy: "IfNotPresent",
      runAsUser: 1000,
      cpuRequest: "",
      memoryRequest: "",
      memoryLimit: "",
    }),
    "initContainers",
  )[0];
  assert.equal(custom.imagePullPolicy, "IfNotPresent");
  assert.equal(custom.resources, undefined);
  assert.equal((custom.securityContext as JsonObject).runAsUser, 1000);
});

Deno.test("isMcaImage recognises mca images of any registry and tag", () => {
  assert.ok(isMcaImage("mca", "mca:latest"));
  assert.ok(isMcaImage("ghcr.io/x/mca:1.2@sha256:abc", "mca:latest"));
  assert.ok(
    isMcaImage(
      "localhost:5000/tools/sidecar:1",
      "localhost:5000/tools/sidecar:2",
    ),
  );
  assert.ok(!isMcaImage("nginx:mca", "mca:latest"));
  assert.ok(!isMcaImage("localhost:5000/mcapp", "mca:latest"));
  assert.ok(!isMcaImage(undefined, "mca:latest"));
});

// ---------------------------------------------------------------- property

/** A spec the injector accepts: no foreign `mca` in spec.containers. */
function acceptable(spec: JsonObject): boolean {
  return !containersOf(spec, "containers").some((c) =>
    c.name === "mca" && !isMcaImage(c.image, "mca:latest")
  );
}

function isOurEnv(e: JsonObject): boolean {
  return e.name === "KUBERNETES_SERVICE_HOST" ||
    e.name === "KUBERNETES_SERVICE_PORT";
}

function isSaRelated(m: JsonObject): boolean {
  const p = String(m.mountPath).replace(/\/+$/, "");
  return p === SA_PATH || p.startsWith(SA_PATH + "/") ||
    m.name === REAL_SA_VOLUME || m.name === MCA_STATE_VOLUME;
}

Deno.test("inject property: idempotent, exactly one mca first, user parts untouched", () => {
  fc.assert(
    fc.property(podSpec, (generated) => {
      const spec = JSON.parse(JSON.stringify(generated)) as JsonObject;
      fc.pre(acceptable(spec));
      const once = injectPodSpec(spec);
      const twice = injectPodSpec(once);
      assert.equal(JSON.stringify(twice), JSON.stringify(once));
      assertInjected(once);
      const userApps = [
        ...containersOf(spec, "initContainers"),
        ...containersOf(spec, "containers"),
      ].filter((c) => c.name !== "mca");
      const outApps = [
        ...containersOf(once, "initContainers").slice(1),
        ...containersOf(once, "containers"),
      ];
      assert.equal(outApps.length, userApps.length);
      userApps.forEach((before, i) => {
        const after = outApps[i];
        assert.equal(after.name, before.name);
        assert.equal(after.image, before.image);
        assert.deepEqual(
          envOf(after).filter((e) => !isOurEnv(e)),
          envOf(before).filter((e) => !isOurEnv(e)),
        );
        assert.deepEqual(
          mountsOf(after).filter((m) => !isSaRelated(m)),
          mountsOf(before).filter((m) => !isSaRelated(m)),
        );
      });
      const ours = new Set([REAL_SA_VOLUME, MCA_SA_VOLUME, MCA_STATE_VOLUME]);
      assert.deepEqual(
        volumesOf(once).filter((v) => !ours.has(v.name as string)),
        volumesOf(spec).filter((v) => !ours.has(v.name as string)),
      );
    }),
    propertyRuns(300),
  );
});
