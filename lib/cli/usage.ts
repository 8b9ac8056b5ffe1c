/**
 * The text of `mca --help` and `mca --version`.
 *
 * Kept in one place beside the flag table so that a new flag and its line in
 * the usage text are changed together; the defaults shown are read from the
 * modules that apply them, so the text cannot drift from the behaviour.
 *
 * @module
 */

import {
  DEFAULT_OPTIONS,
  MCA_SA_PATH,
  MCA_STATE_PATH,
  METRICS_PORT,
  METRICS_PORT_NAME,
  POLICY_KEY,
  ROUTING_KEY,
  SA_PATH,
} from "../inject/pod_spec.ts";

/** The version `mca --version` prints. */
export const VERSION = "0.1.0";

/** What `mca --help` prints: every mode and flag with its default. */
export const USAGE = `mca ${VERSION} — Multi Cluster Adapter

A Kubernetes sidecar that is a TLS man-in-the-middle for every Kubernetes API
call the other containers of its Pod make.

Usage:
  mca [proxy flags]                 run the proxy (the sidecar's main process)
  mca --inject [inject flags] < in.yaml > out.yaml
                                    add the mca sidecar to Pods / pod templates
  mca --probe [probe flags]         startup probe: exit 0 once the proxy is ready
  mca --webhook [webhook flags] [inject flags]
                                    mutating admission webhook (automatic injection)
  mca --help | --version

Proxy flags:
  --sa-dir DIR               the real service-account directory
                             (default ${SA_PATH})
  --mca-sa-dir DIR           where to write the apps' service-account files
                             (default ${MCA_SA_PATH})
  --state-dir DIR            where the CA is kept across restarts; only mca
                             may read it (default ${MCA_STATE_PATH})
  --listen ADDRS             comma-separated listen addresses (default
                             127.0.0.1,::1; ::1 is skipped without IPv6)
  --port N                   listen port (default 6443; 0 picks a free
                             port, for tests)
  --kubeconfig FILE          use this kubeconfig instead of the in-cluster
                             service account (local development); without
                             a service account, KUBECONFIG and
                             ~/.kube/config are tried
  --context NAME             kubeconfig context (default: the current one)
  --connect-timeout-ms N     bound on connecting to the API server; past it
                             the app gets a 503 Status (default 10000)

Multi-cluster flags (Phase 2):
  --clusters-dir DIR         kubeconfig files (e.g. a mounted Secret); each
                             context is a cluster, named after the context;
                             the Pod's own cluster is always "local"
  --routing-config FILE      routing rules (e.g. a mounted ConfigMap);
                             reloaded when it changes, an invalid version is
                             rejected and the previous one kept; without it
                             every call goes to "local"
  --policy FILE              call policy (mca.io/v1alpha1 Policy, e.g. a
                             mounted ConfigMap); reloaded like the routing
                             file; a refused call gets a 403 Forbidden Status
  --health-interval-ms N     how often each cluster's /readyz is probed
                             (default 5000)

Audit flags (Phase 3):
  --audit-policy FILE        what to record: kube-apiserver's audit.k8s.io/v1
                             Policy format (levels None, Metadata, Request,
                             RequestResponse; first matching rule wins); a
                             malformed file stops the start (file:line)
  --audit-log PATH           write audit.k8s.io/v1 Events, one JSON per line,
                             to PATH ("-" = stdout); an unwritable file is
                             reported and its events dropped, calls go on
  --audit-log-maxsize MB     rotate the audit log at this size (default 100)
  --audit-log-maxbackup N    rotated files to keep; 0 keeps all (default 3)
  --audit-webhook-url URL    also POST batches of Events (EventList) to URL;
                             bounded buffer, retries with back-off, events
                             dropped when full are counted

Metrics flags (Phase 3):
  --metrics-listen ADDR      address of the plain-HTTP /metrics endpoint
                             (default 0.0.0.0: the Pod IP, for Prometheus)
  --metrics-port N           its port (default ${METRICS_PORT}; 0 turns
                             metrics off)

Inject flags:
  --image IMAGE              sidecar image (default ${DEFAULT_OPTIONS.image})
  --image-pull-policy P      Always | IfNotPresent | Never (default: omitted,
                             so the cluster's default applies)
  --run-as-user UID          UID and GID of the sidecar (default ${DEFAULT_OPTIONS.runAsUser}, non-root)
  --cpu-request Q            CPU request (default ${DEFAULT_OPTIONS.cpuRequest}; "" omits it)
  --memory-request Q         memory request (default ${DEFAULT_OPTIONS.memoryRequest}; "" omits it)
  --memory-limit Q           memory limit (default ${DEFAULT_OPTIONS.memoryLimit}; "" omits it)
  --routing-configmap NAME   mount ConfigMap NAME (key ${ROUTING_KEY}) into mca
                             and pass --routing-config
  --clusters-secret NAME     mount Secret NAME (kubeconfig files) into mca and
                             pass --clusters-dir
  --policy-configmap NAME    mount ConfigMap NAME (key ${POLICY_KEY}) into mca and
                             pass --policy
  --metrics-port N           give mca a containerPort ${METRICS_PORT_NAME} N and pass
                             --metrics-port (suggested ${METRICS_PORT}; default none)

  Input: YAML or JSON on stdin, one or more documents (---), Lists, and
  Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
  Job, CronJob and PodTemplate objects; other kinds pass through unchanged.
  Output: YAML on stdout. On any error: one line on stderr, exit 1, nothing
  on stdout.

Probe flags:
  --mca-sa-dir DIR           the app-facing service-account directory
                             (default ${MCA_SA_PATH})
  --port N                   the proxy's port (default 6443)
  --timeout-ms N             give up after N ms (default 3000)

Webhook flags (the inject flags above are the sidecar defaults; Pods
override them with mca.io/* annotations):
  --listen ADDR              listen address (default 0.0.0.0)
  --port N                   HTTPS port (default 8443)
  --tls-cert FILE            serving certificate (PEM), re-read when it changes
  --tls-key FILE             its private key (PEM)
  --namespace NAME           the webhook's own namespace, never injected
                             (default $POD_NAMESPACE, else mca-system)

Exit codes: 0 success, 1 bad input or not ready, 2 bad flags.
`;
