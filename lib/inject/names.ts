/**
 * The paths, volume and container names an injected Pod is built from.
 *
 * One table, because the sidecar's mounts, the app containers' mounts and the
 * Pod's volumes must agree on every name and path: a typo in one place would
 * leave an app reading the real token or `mca` reading nothing.
 *
 * @module
 */

/** Where every in-cluster SDK looks for its service-account files. */
export const SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";
/** Where `mca` writes the service-account directory the apps see. */
export const MCA_SA_PATH = "/var/run/secrets/kubernetes.io/mca-serviceaccount";
/** Where `mca` keeps its CA key; mounted into the `mca` container only. */
export const MCA_STATE_PATH = "/var/lib/mca";
/** The real service-account volume, mounted into `mca` only. */
export const REAL_SA_VOLUME = "kube-api-access-sa";
/** The fake service-account volume `mca` writes and the apps read. */
export const MCA_SA_VOLUME = "kube-api-access-mca-sa";
/** The CA state volume, so a restarted `mca` keeps the CA the apps trust. */
export const MCA_STATE_VOLUME = "mca-state";
/** The sidecar's container name. */
export const MCA_CONTAINER = "mca";
/** Where the binary lives in the image (the startup probe runs it). */
export const MCA_BINARY = "/usr/local/bin/mca";
/** Loopback address and port the apps are pointed at. */
export const PROXY_HOST = "127.0.0.1";
/** Port the proxy listens on (the Kubernetes API convention). */
export const PROXY_PORT = 6443;
/**
 * Default port of mca's Prometheus metrics endpoint (`--metrics-port`).
 * Pod containers share one network namespace, so the port must not be one an
 * app or another mesh is likely to bind: 6453 sits next to the proxy's 6443
 * and outside 8080/8443/9090, the Prometheus exporters' 9100-9999 registry
 * (which holds OpenTelemetry's 9464), Istio's 15000-15090 and Linkerd's
 * 4140-4191.
 */
export const METRICS_PORT = 6453;
/** Name of the metrics containerPort (scrape configs select it by name). */
export const METRICS_PORT_NAME = "mca-metrics";
/** Volume of the routing ConfigMap (Phase 2), mounted into `mca` only. */
export const ROUTING_VOLUME = "mca-routing";
/** Volume of the clusters Secret (kubeconfigs), mounted into `mca` only. */
export const CLUSTERS_VOLUME = "mca-clusters";
/** Volume of the policy ConfigMap, mounted into `mca` only. */
export const POLICY_VOLUME = "mca-policy";
/** Where the routing ConfigMap is mounted; its key `routing.yaml` is read. */
export const ROUTING_DIR = "/etc/mca/routing";
/** Where the clusters Secret is mounted (`--clusters-dir`). */
export const CLUSTERS_DIR = "/etc/mca/clusters";
/** Where the policy ConfigMap is mounted; its key `policy.yaml` is read. */
export const POLICY_DIR = "/etc/mca/policy";
/** The ConfigMap key holding the routing rules. */
export const ROUTING_KEY = "routing.yaml";
/** The ConfigMap key holding the policy. */
export const POLICY_KEY = "policy.yaml";

/**
 * Volumes and mounts the injector owns besides the three SA/state ones: apps
 * never get them, and one no longer asked for is dropped on re-injection.
 */
export const WIRED_VOLUMES = [ROUTING_VOLUME, CLUSTERS_VOLUME, POLICY_VOLUME];
