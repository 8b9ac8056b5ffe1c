/**
 * fast-check generators of Pod specs that exercise the injector's rules
 * (stale mca containers, SA mounts, our volume names with wrong content),
 * shared by the inject and JSON Patch property tests.
 *
 * @module
 */

import fc from "fast-check";
import {
  MCA_SA_VOLUME,
  MCA_STATE_VOLUME,
  REAL_SA_VOLUME,
  SA_PATH,
} from "../../lib/inject/pod_spec.ts";

const names = fc.constantFrom(
  "app",
  "web",
  "worker",
  "mca",
  "init",
  "side",
);
const envEntry = fc.record({
  name: fc.constantFrom(
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "FOO",
    "BAR",
  ),
  value: fc.string({ maxLength: 8 }),
});
const mount = fc.record({
  name: fc.constantFrom("data", "cfg", MCA_SA_VOLUME, REAL_SA_VOLUME, "x"),
  mountPath: fc.constantFrom(
    "/data",
    "/cfg",
    SA_PATH,
    SA_PATH + "/",
    "/var/run/secrets/other",
  ),
});
const container = fc.record({
  name: names,
  image: fc.constantFrom("busybox", "mca:old", "nginx:1"),
  env: fc.array(envEntry, { maxLength: 4 }),
  volumeMounts: fc.array(mount, { maxLength: 3 }),
}, { requiredKeys: ["name"] });
const volume = fc.oneof(
  fc.record({
    name: fc.constantFrom("data", "cfg"),
    emptyDir: fc.constant({}),
  }),
  fc.record({
    name: fc.constantFrom(MCA_SA_VOLUME, REAL_SA_VOLUME, MCA_STATE_VOLUME),
    hostPath: fc.record({ path: fc.constant("/tmp") }),
  }),
);
/** A Pod spec; may hold a foreign `mca` container (filter with isMcaImage). */
export const podSpec = fc.record({
  containers: fc.array(container, { minLength: 1, maxLength: 3 }),
  initContainers: fc.array(container, { maxLength: 3 }),
  volumes: fc.array(volume, { maxLength: 4 }),
  automountServiceAccountToken: fc.boolean(),
}, { requiredKeys: ["containers"] });
