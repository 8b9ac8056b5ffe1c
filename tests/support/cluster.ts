/**
 * A real, single-node Kubernetes control plane on loopback for end-to-end
 * tests: etcd, kube-apiserver and a kube-controller-manager running only the
 * two controllers a namespace needs (`default` ServiceAccount and the
 * `kube-root-ca.crt` ConfigMap). No kubelet: pods are never scheduled.
 *
 * The binaries are built from the wrapper modules in `tests/e2e/toolchain/`
 * by `build.sh` and cached under `~/.cache/mca/bin/` (see
 * {@linkcode ensureToolchain}).
 *
 * ```ts
 * const cluster = await startCluster({ dir: "tmp/my-test" });
 * try {
 *   const token = await cluster.mintToken();
 *   await cluster.writeServiceAccountDir("tmp/my-test/sa");
 * } finally {
 *   await cluster.stop();
 * }
 * ```
 *
 * @module
 */

import { join, resolve } from "node:path";
import { buildScript } from "./toolchain.ts";

/** Paths of the binaries the cluster runs. */
export interface Toolchain {
  etcd: string;
  etcdctl: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubectl: string;
  /** Only the node tier runs it. */
  kubelet?: string;
}

/** A rule of an RBAC Role, as in `rbac.authorization.k8s.io/v1`. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/**
 * What the test ServiceAccount may do in its namespace unless
 * {@linkcode StartClusterOptions.rules} says otherwise. Secrets are
 * deliberately absent: listing them must be a 403.
 */
export const DEFAULT_ROLE_RULES: readonly PolicyRule[] = Object.freeze([
  { apiGroups: [""], resources: ["configmaps"], verbs: ["*"] },
  {
    apiGroups: [""],
    resources: ["pods"],
    verbs: ["get", "list", "watch", "create", "delete", "patch"],
  },
  {
    apiGroups: ["", "events.k8s.io"],
    resources: ["events"],
    verbs: ["get", "list"],
  },
]);

/** Options of {@linkcode startCluster}. */
export interface StartClusterOptions {
  /** Directory for certificates, data, kubeconfigs and logs (created if missing). */
  dir: string;
  /** Namespace created for the test ServiceAccount. Default `mca-e2e`. */
  namespace?: string;
  /** ServiceAccount created in {@linkcode namespace}. Default `app`. */
  serviceAccount?: string;
  /** Rules of the Role bound to the ServiceAccount. Default {@linkcode DEFAULT_ROLE_RULES}. */
  rules?: readonly PolicyRule[];
  /** Binaries to run; default: built (or found in the cache) by {@linkcode ensureToolchain}. */
  toolchain?: Toolchain;
  /** Deadline for the whole start-up once binaries exist, in ms. Default 60 000. */
  timeoutMs?: number;
  /** Extra kube-apiserver flags (the node tier: kubelet client cert, address types). */
  apiserverArgs?: readonly string[];
  /** Extra lines of the static token file, e.g. a kubelet identity in `system:nodes`. */
  tokenLines?: readonly string[];
  /** Extra subjectAltName entries of the serving cert, e.g. `IP:10.96.0.1`. */
  serverSans?: readonly string[];
  /**
   * More kube-controller-manager controllers, e.g. `deployment-controller`
   * and `replicaset-controller` so that Deployments create Pods.
   */
  controllers?: readonly string[];
}

/** Options of {@linkcode Cluster.kubectl}. */
export interface KubectlOptions {
  /** Written to kubectl's stdin (e.g. a manifest for `apply -f -`). */
  stdin?: string;
  /** Run with this bearer token instead of the admin identity. */
  token?: string;
  /** Throw when kubectl exits non-zero (default true). */
  check?: boolean;
}

/** Result of {@linkcode Cluster.kubectl}. */
export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode Cluster.mintToken}. */
export interface MintTokenOptions {
  /** Default: the cluster's test ServiceAccount. */
  serviceAccount?: string;
  /** Default: the cluster's test namespace. */
  namespace?: string;
  /** Requested lifetime, e.g. `"1h"` (the API enforces at least 10 min). */
  duration?: string;
  /** Audiences; default the API server's own. */
  audiences?: string[];
}

/** Options of {@linkcode Cluster.writeServiceAccountDir}. */
export interface ServiceAccountDirOptions extends MintTokenOptions {
  /** Write this token instead of minting one (e.g. an invalid one). */
  token?: string;
}

/** Options of {@linkcode Cluster.rotateToken}. */
export interface RotateTokenOptions {
  /** Default: the cluster's test ServiceAccount. */
  serviceAccount?: string;
  /** Requested lifetime of the new token. */
  duration?: string;
  /** Write this token instead of minting one. */
  token?: string;
}

/** A running cluster returned by {@linkcode startCluster}. */
export interface Cluster {
  /** `https://127.0.0.1:<port>` of kube-apiserver. */
  readonly url: string;
  /** Always `127.0.0.1`. */
  readonly host: string;
  /** kube-apiserver's secure port. */
  readonly port: number;
  /** PEM file of the CA that signed kube-apiserver's serving certificate. */
  readonly caFile: string;
  /** Kubeconfig with the admin static token (group `system:masters`); set-up only. */
  readonly adminKubeconfig: string;
  /** Kubeconfig with the cluster and no user: pair it with `--token`. */
  readonly serverKubeconfig: string;
  /** Directory passed as {@linkcode StartClusterOptions.dir} (absolute). */
  readonly dir: string;
  /** The test namespace. */
  readonly namespace: string;
  /** The test ServiceAccount's name. */
  readonly serviceAccount: string;
  /** `system:serviceaccount:<namespace>:<serviceAccount>`. */
  readonly serviceAccountUser: string;
  /** Binaries in use; `bin.kubectl` is the kubectl matching the server. */
  readonly bin: Toolchain;
  /** Process ids of the components (gone once {@linkcode stop} resolves). */
  readonly pids: Readonly<Record<ComponentName, number>>;
  /** Log file of each component (stdout and stderr). */
  readonly logs: Readonly<Record<ComponentName, string>>;
  /** Env vars an in-cluster client reads: `KUBERNETES_SERVICE_HOST`/`_PORT`. */
  serviceEnv(): Record<string, string>;
  /** Runs kubectl as admin (or with `opts.token`), with a kubectl cache under {@linkcode dir}. */
  kubectl(args: string[], opts?: KubectlOptions): Promise<KubectlResult>;
  /** Mints a ServiceAccount token with the TokenRequest API (`kubectl create token`). */
  mintToken(opts?: MintTokenOptions): Promise<string>;
  /**
   * Lays out `dir` like the kubelet's projected service-account volume
   * (`token`, `ca.crt`, `namespace`) and returns the token written.
   */
  writeServiceAccountDir(
    dir: string,
    opts?: ServiceAccountDirOptions,
  ): Promise<string>;
  /**
   * Mints a new token and swaps it into a directory made by
   * {@linkcode writeServiceAccountDir} the way the kubelet does; returns it.
   */
  rotateToken(dir: string, opts?: RotateTokenOptions): Promise<string>;
  /**
   * Stops kube-apiserver alone (SIGTERM, SIGKILL after 5 s); etcd and
   * kube-controller-manager keep running, so {@linkcode startApiserver}
   * brings the same cluster back. Resolves once it has exited. For tests of
   * an API server going away (failover).
   */
  stopApiserver(): Promise<void>;
  /**
   * Starts kube-apiserver again after {@linkcode stopApiserver}, on the same
   * port with the same flags and data, and resolves once `/readyz` answers
   * `ok` and the test ServiceAccount's RBAC is in effect again. A no-op
   * while it is running.
   */
  startApiserver(opts?: { timeoutMs?: number }): Promise<void>;
  /** Stops every component and waits for them to exit. Idempotent. */
  stop(): Promise<void>;
  /** Same as {@linkcode stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** The processes a cluster runs. */
export type ComponentName =
  | "etcd"
  | "kube-apiserver"
  | "kube-controller-manager";

const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";
const POLL_INTERVAL_MS = 100;

/**
 * Builds the cluster binaries if they are not cached yet
 * (`tests/e2e/toolchain/build.sh`, progress on stderr; cold: ~5 min on 2
 * cores plus module downloads; warm: well under 1 s). Needs `go` on PATH
 * only when something has to be built.
 */
export async function ensureToolchain(): Promise<Toolchain> {
  const paths = await buildScript("build.sh");
  const path = (name: string) => {
    const value = paths.get(name);
    if (!value) throw new Error(`build.sh did not report a path for ${name}`);
    return value;
  };
  return {
    etcd: path("etcd"),
    etcdctl: path("etcdctl"),
    kubeApiserver: path("kube-apiserver"),
    kubeControllerManager: path("kube-controller-manager"),
    kubectl: path("kubectl"),
    kubelet: path("kubelet"),
  };
}

/**
 * Starts etcd, kube-apiserver and kube-controller-manager on free loopback
 * ports, everything under `options.dir`, and prepares the test namespace,
 * ServiceAccount, Role and RoleBinding. Resolves once the ServiceAccount's
 * permissions are in effect and the namespace has its `default`
 * ServiceAccount and `kube-root-ca.crt` ConfigMap. On failure every started
 * process is stopped and the error carries the tail of the failing
 * component's log.
 */
export async function startCluster(
  options: StartClusterOptions,
): Promise<Cluster> {
  const bin = options.toolchain ?? await ensureToolchain();
  const dir = resolve(options.dir);
  const namespace = options.namespace ?? "mca-e2e";
  const serviceAccount = options.serviceAccount ?? "app";
  const rules = options.rules ?? DEFAULT_ROLE_RULES;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);

  await Deno.mkdir(join(dir, "home"), { recursive: true });
  const pki = await writePki(join(dir, "pki"), options.serverSans ?? []);
  const caPem = await Deno.readTextFile(pki.caCert);
  const adminToken = randomHex(32);
  await Deno.writeTextFile(
    pki.tokenFile,
    [
      `${adminToken},mca-e2e-admin,mca-e2e-admin,"system:masters"`,
      ...(options.tokenLines ?? []),
      "",
    ].join("\n"),
    { mode: 0o600 },
  );

  const procs: Component[] = [];
  const client = Deno.createHttpClient({ caCerts: [caPem] });
  try {
    let etcdUrl = "";
    const etcd = await startWithFreshPorts(2, deadline, [], (ports) => {
      // A failed attempt may have bootstrapped a member with other URLs.
      const dataDir = join(dir, "etcd-data");
      removeTreeSync(dataDir);
      etcdUrl = `http://127.0.0.1:${ports[0]}`;
      const peerUrl = `http://127.0.0.1:${ports[1]}`;
      const proc = spawnComponent("etcd", bin.etcd, dir, [
        "--name=mca-e2e",
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=mca-e2e=${peerUrl}`,
        "--initial-cluster-state=new",
        // Test data is thrown away: skip fsync to keep writes fast.
        "--unsafe-no-fsync",
      ]);
      async function ready(): Promise<boolean> {
        const body = await fetchText(`${etcdUrl}/health`, {});
        return body !== undefined && JSON.parse(body).health === "true";
      }
      return { proc, ready };
    });
    procs.push(etcd);

    let port = 0;
    const apiserver = await startWithFreshPorts(
      1,
      deadline,
      [etcd],
      (ports) => {
        port = ports[0];
        const proc = spawnComponent("kube-apiserver", bin.kubeApiserver, dir, [
          `--etcd-servers=${etcdUrl}`,
          "--bind-address=127.0.0.1",
          "--advertise-address=127.0.0.1",
          `--secure-port=${port}`,
          `--cert-dir=${join(dir, "apiserver")}`,
          `--tls-cert-file=${pki.serverCert}`,
          `--tls-private-key-file=${pki.serverKey}`,
          "--authorization-mode=Node,RBAC",
          `--token-auth-file=${pki.tokenFile}`,
          `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
          `--service-account-key-file=${pki.saKey}`,
          `--service-account-signing-key-file=${pki.saKey}`,
          // A configuration value only: nothing ever routes to this range.
          "--service-cluster-ip-range=10.96.0.0/16",
          "--allow-privileged=true",
          "--profiling=false",
          ...(options.apiserverArgs ?? []),
        ]);
        async function ready(): Promise<boolean> {
          const url = `https://127.0.0.1:${port}/readyz`;
          return await fetchText(url, { client, token: adminToken }) === "ok";
        }
        return { proc, ready };
      },
    );
    procs.push(apiserver);
    const url = `https://127.0.0.1:${port}`;

    // Kubeconfigs embed the CA so they stay valid when copied elsewhere.
    const adminKubeconfig = join(dir, "admin.kubeconfig");
    const serverKubeconfig = join(dir, "server.kubeconfig");
    await Deno.writeTextFile(
      adminKubeconfig,
      kubeconfigJson(url, caPem, namespace, adminToken),
      { mode: 0o600 },
    );
    await Deno.writeTextFile(
      serverKubeconfig,
      kubeconfigJson(url, caPem, namespace),
    );

    // kube-controller-manager: only what a namespace needs to be usable.
    const kcm = spawnComponent(
      "kube-controller-manager",
      bin.kubeControllerManager,
      dir,
      [
        `--kubeconfig=${adminKubeconfig}`,
        `--controllers=${
          [
            "root-ca-certificate-publisher-controller",
            "serviceaccount-controller",
            ...(options.controllers ?? []),
          ].join(",")
        }`,
        `--root-ca-file=${pki.caCert}`,
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        // No serving port: nothing to collide with, nothing to probe.
        "--secure-port=0",
      ],
    );
    procs.push(kcm);

    const cluster = new RunningCluster({
      url,
      port,
      caFile: pki.caCert,
      caPem,
      adminKubeconfig,
      serverKubeconfig,
      dir,
      namespace,
      serviceAccount,
      bin,
      procs: {
        "etcd": etcd,
        "kube-apiserver": apiserver,
        "kube-controller-manager": kcm,
      },
      client,
      adminToken,
    });

    await cluster.kubectl(["apply", "-f", "-"], {
      stdin: JSON.stringify(setupManifest(namespace, serviceAccount, rules)),
    });
    const api = { url, client, token: adminToken };
    const made = "(made by kube-controller-manager)";
    const ns = `/api/v1/namespaces/${namespace}`;
    await waitUntil(
      `ServiceAccount "default" in namespace ${namespace} ${made}`,
      deadline,
      procs,
      async () => await apiStatus(api, `${ns}/serviceaccounts/default`) === 200,
    );
    await waitUntil(
      `ConfigMap "kube-root-ca.crt" in namespace ${namespace} ${made}`,
      deadline,
      procs,
      async () =>
        await apiStatus(api, `${ns}/configmaps/kube-root-ca.crt`) === 200,
    );
    // RBAC reads bindings from an informer cache: wait until it has ours.
    await waitUntil(
      `RBAC to let ${cluster.serviceAccountUser} list configmaps`,
      deadline,
      procs,
      () =>
        serviceAccountCan(api, namespace, serviceAccount, "list", "configmaps"),
    );
    return cluster;
  } catch (error) {
    await stopComponents(procs);
    client.close();
    throw error;
  }
}

interface ClusterState {
  url: string;
  port: number;
  caFile: string;
  caPem: string;
  adminKubeconfig: string;
  serverKubeconfig: string;
  dir: string;
  namespace: string;
  serviceAccount: string;
  bin: Toolchain;
  procs: Record<ComponentName, Component>;
  client: Deno.HttpClient;
  adminToken: string;
}

class RunningCluster implements Cluster {
  readonly url: string;
  readonly host = "127.0.0.1";
  readonly port: number;
  readonly caFile: string;
  readonly adminKubeconfig: string;
  readonly serverKubeconfig: string;
  readonly dir: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly serviceAccountUser: string;
  readonly bin: Toolchain;
  #caPem: string;
  #procs: Record<ComponentName, Component>;
  #client: Deno.HttpClient;
  #adminToken: string;
  #stopping: Promise<void> | undefined;
  #restarting: Promise<void> | undefined;

  constructor(state: ClusterState) {
    this.url = state.url;
    this.port = state.port;
    this.caFile = state.caFile;
    this.adminKubeconfig = state.adminKubeconfig;
    this.serverKubeconfig = state.serverKubeconfig;
    this.dir = state.dir;
    this.namespace = state.namespace;
    this.serviceAccount = state.serviceAccount;
    this.serviceAccountUser =
      `system:serviceaccount:${state.namespace}:${state.serviceAccount}`;
    this.bin = state.bin;
    this.#caPem = state.caPem;
    this.#procs = state.procs;
    this.#client = state.client;
    this.#adminToken = state.adminToken;
  }

  get pids(): Readonly<Record<ComponentName, number>> {
    const procs = Object.values(this.#procs);
    return Object.fromEntries(
      procs.map((p) => [p.name, p.child.pid]),
    ) as Record<ComponentName, number>;
  }

  get logs(): Readonly<Record<ComponentName, string>> {
    const procs = Object.values(this.#procs);
    return Object.fromEntries(procs.map((p) => [p.name, p.log])) as Record<
      ComponentName,
      string
    >;
  }

  serviceEnv(): Record<string, string> {
    return {
      KUBERNETES_SERVICE_HOST: this.host,
      KUBERNETES_SERVICE_PORT: String(this.port),
      KUBERNETES_SERVICE_PORT_HTTPS: String(this.port),
    };
  }

  async kubectl(
    args: string[],
    opts: KubectlOptions = {},
  ): Promise<KubectlResult> {
    const auth = opts.token === undefined
      ? [`--kubeconfig=${this.adminKubeconfig}`]
      : [`--kubeconfig=${this.serverKubeconfig}`, `--token=${opts.token}`];
    const child = new Deno.Command(this.bin.kubectl, {
      args: [
        ...auth,
        `--cache-dir=${join(this.dir, "kubectl-cache")}`,
        ...args,
      ],
      cwd: this.dir,
      stdin: opts.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (opts.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(opts.stdin));
      await writer.close();
    }
    const out = await child.output();
    const decoder = new TextDecoder();
    const result = {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
    if ((opts.check ?? true) && result.code !== 0) {
      throw new Error(
        `kubectl ${
          args.join(" ")
        } exited with code ${result.code}:\n${result.stderr}`,
      );
    }
    return result;
  }

  async mintToken(opts: MintTokenOptions = {}): Promise<string> {
    const args = [
      "create",
      "token",
      opts.serviceAccount ?? this.serviceAccount,
      `--namespace=${opts.namespace ?? this.namespace}`,
    ];
    if (opts.duration !== undefined) args.push(`--duration=${opts.duration}`);
    for (const audience of opts.audiences ?? []) {
      args.push(`--audience=${audience}`);
    }
    const token = (await this.kubectl(args)).stdout.trim();
    if (token === "") {
      throw new Error(`kubectl ${args.join(" ")} printed no token`);
    }
    return token;
  }

  async writeServiceAccountDir(
    dir: string,
    opts: ServiceAccountDirOptions = {},
  ): Promise<string> {
    const token = opts.token ?? await this.mintToken(opts);
    await writeProjectedVolume(dir, {
      "ca.crt": this.#caPem,
      "namespace": opts.namespace ?? this.namespace,
      "token": token,
    });
    return token;
  }

  async rotateToken(
    dir: string,
    opts: RotateTokenOptions = {},
  ): Promise<string> {
    // Like the kubelet, write the whole payload again; ca.crt and namespace
    // keep the content of the current generation.
    const current = join(dir, "..data");
    const namespace = await Deno.readTextFile(join(current, "namespace"));
    const ca = await Deno.readTextFile(join(current, "ca.crt"));
    const token = opts.token ??
      await this.mintToken({
        namespace,
        serviceAccount: opts.serviceAccount,
        duration: opts.duration,
      });
    await writeProjectedVolume(dir, {
      "ca.crt": ca,
      "namespace": namespace,
      "token": token,
    });
    return token;
  }

  async stopApiserver(): Promise<void> {
    await this.#restarting;
    await terminate(this.#procs["kube-apiserver"], 5_000);
  }

  async startApiserver(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.#stopping) throw new Error("the cluster is stopped");
    const old = this.#procs["kube-apiserver"];
    if (old.exit === undefined) return;
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    const restart = async () => {
      // Same binary, flags and port: clients find the same server again.
      const proc = spawnComponent(old.name, old.bin, this.dir, old.args);
      this.#procs["kube-apiserver"] = proc;
      const api = {
        url: this.url,
        client: this.#client,
        token: this.#adminToken,
      };
      const watched = [this.#procs.etcd, proc];
      await waitUntil(
        "kube-apiserver to become ready again",
        deadline,
        watched,
        async () => await fetchText(`${this.url}/readyz`, api) === "ok",
      );
      await waitUntil(
        `RBAC to let ${this.serviceAccountUser} list configmaps again`,
        deadline,
        watched,
        () =>
          serviceAccountCan(
            api,
            this.namespace,
            this.serviceAccount,
            "list",
            "configmaps",
          ),
      );
    };
    this.#restarting = restart().finally(() => this.#restarting = undefined);
    await this.#restarting;
  }

  stop(): Promise<void> {
    this.#stopping ??= stopComponents(Object.values(this.#procs)).finally(() =>
      this.#client.close()
    );
    return this.#stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * Writes `files` into `dir` exactly as the kubelet's AtomicWriter updates a
 * projected (or secret/configMap) volume: the payload goes into a new
 * `..YYYY_MM_DD_HH_MM_SS.<random>` directory, a `..data_tmp` symlink to it is
 * renamed over `..data` (the atomic switch), each top-level name is a
 * symlink to `..data/<name>` (created once), names no longer in the payload
 * are unlinked, and the previous generation's directory is deleted. Readers
 * that open `dir/<name>` therefore always see one complete generation.
 */
export async function writeProjectedVolume(
  dir: string,
  files: Record<string, string | Uint8Array>,
): Promise<void> {
  for (const name of Object.keys(files)) {
    if (name === "" || name.includes("/") || name.startsWith("..")) {
      throw new Error(`invalid projected file name ${JSON.stringify(name)}`);
    }
  }
  await Deno.mkdir(dir, { recursive: true });
  const dataLink = join(dir, "..data");
  const oldGeneration = await readLinkOrUndefined(dataLink);

  const generation = await makeTimestampDir(dir);
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, generation, name);
    if (typeof content === "string") {
      await Deno.writeTextFile(path, content, { mode: 0o644 });
    } else {
      await Deno.writeFile(path, content, { mode: 0o644 });
    }
    await Deno.chmod(path, 0o644);
  }

  const tmpLink = join(dir, "..data_tmp");
  await removeIfPresent(tmpLink);
  await Deno.symlink(generation, tmpLink);
  await Deno.rename(tmpLink, dataLink);

  for (const name of Object.keys(files)) {
    const visible = join(dir, name);
    try {
      await Deno.lstat(visible);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      await Deno.symlink(`..data/${name}`, visible);
    }
  }

  if (oldGeneration !== undefined && oldGeneration !== generation) {
    const oldDir = join(dir, oldGeneration);
    try {
      for await (const entry of Deno.readDir(oldDir)) {
        if (!(entry.name in files)) {
          await removeIfPresent(join(dir, entry.name));
        }
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    await Deno.remove(oldDir, { recursive: true }).catch(ignoreNotFound);
  }
}

// ---------------------------------------------------------------------------
// Components

interface Component {
  name: ComponentName;
  /** Binary and arguments, to start it again the same way. */
  bin: string;
  args: string[];
  child: Deno.ChildProcess;
  log: string;
  status: Promise<Deno.CommandStatus>;
  exit: Deno.CommandStatus | undefined;
}

let setprivPath: string | null | undefined;

/**
 * Spawns `bin` with stdout and stderr appended to `<dir>/<name>.log`. The
 * shell `exec`s into the binary, so the child's pid is the component's. With
 * util-linux `setpriv`, the component also gets SIGKILL if this process dies
 * without stopping it, so a crashed test leaves no servers behind.
 */
function spawnComponent(
  name: ComponentName,
  bin: string,
  dir: string,
  args: string[],
): Component {
  setprivPath ??= findOnPath("setpriv");
  const log = join(dir, `${name}.log`);
  const argv = setprivPath
    ? [setprivPath, "--pdeathsig", "KILL", "--", bin, ...args]
    : [
      bin,
      ...args,
    ];
  const child = new Deno.Command("/bin/sh", {
    args: [
      "-c",
      'log="$1"; shift; exec "$@" >>"$log" 2>&1',
      "sh",
      log,
      ...argv,
    ],
    cwd: dir,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: join(dir, "home"),
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const component: Component = {
    name,
    bin,
    args,
    child,
    log,
    status: child.status,
    exit: undefined,
  };
  component.status = child.status.then((status) => {
    component.exit = status;
    return status;
  });
  return component;
}

interface Attempt {
  proc: Component;
  ready: () => Promise<boolean>;
}

/**
 * Picks `count` free loopback ports, starts a component on them and waits
 * until it is ready. Ports are found by binding port 0 and closing, so
 * another process may grab one in between: when the component dies with
 * "address already in use", it is retried on new ports (three attempts).
 */
async function startWithFreshPorts(
  count: number,
  deadline: number,
  others: Component[],
  start: (ports: number[]) => Attempt,
): Promise<Component> {
  for (let attempt = 1;; attempt++) {
    const { proc, ready } = start(freeLoopbackPorts(count));
    try {
      await waitUntil(`${proc.name} to become ready`, deadline, [
        ...others,
        proc,
      ], ready);
      return proc;
    } catch (error) {
      await stopComponents([proc]);
      const log = await Deno.readTextFile(proc.log).catch(() => "");
      if (attempt < 3 && /address already in use/.test(log)) {
        await Deno.rename(proc.log, `${proc.log}.attempt${attempt}`);
        continue;
      }
      throw error;
    }
  }
}

function freeLoopbackPorts(count: number): number[] {
  const listeners: Deno.TcpListener[] = [];
  try {
    for (let i = 0; i < count; i++) {
      listeners.push(Deno.listen({ hostname: "127.0.0.1", port: 0 }));
    }
    return listeners.map((l) => l.addr.port);
  } finally {
    for (const l of listeners) l.close();
  }
}

/** SIGTERM, then SIGKILL after a grace period; resolves once all have exited. */
async function stopComponents(
  procs: Component[],
  graceMs = 5_000,
): Promise<void> {
  // Reverse start order: clients first, etcd last.
  const reversed = [...procs].reverse();
  const etcd = reversed.filter((p) => p.name === "etcd");
  const rest = reversed.filter((p) => p.name !== "etcd");
  await Promise.all(rest.map((p) => terminate(p, graceMs)));
  await Promise.all(etcd.map((p) => terminate(p, graceMs)));
}

async function terminate(proc: Component, graceMs: number): Promise<void> {
  if (proc.exit === undefined) {
    signal(proc, "SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      proc.status.then(() => false),
      new Promise<boolean>((r) => timer = setTimeout(() => r(true), graceMs)),
    ]);
    clearTimeout(timer);
    if (timedOut) signal(proc, "SIGKILL");
  }
  await proc.status;
}

function signal(proc: Component, sig: Deno.Signal): void {
  try {
    proc.child.kill(sig);
  } catch {
    // Already exited.
  }
}

/**
 * Polls `check` every 100 ms until it returns true. Fails early, with the
 * tail of its log, if one of `procs` exits, and at `deadline` with the tail
 * of every log and the last error `check` threw.
 */
async function waitUntil(
  what: string,
  deadline: number,
  procs: Component[],
  check: () => Promise<boolean>,
): Promise<void> {
  let lastError: unknown;
  while (true) {
    for (const proc of procs) {
      if (proc.exit !== undefined) {
        throw new Error(
          `${proc.name} exited (code ${proc.exit.code}${
            proc.exit.signal ? `, signal ${proc.exit.signal}` : ""
          }) while waiting for ${what}\n${await logTail(proc)}`,
        );
      }
    }
    try {
      if (await check()) return;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const tails = await Promise.all(procs.map((proc) => logTail(proc)));
      const last = lastError === undefined
        ? ""
        : ` (last error: ${String(lastError)})`;
      throw new Error(
        `timed out waiting for ${what}${last}\n${tails.join("\n")}`,
      );
    }
    await delay(POLL_INTERVAL_MS);
  }
}

async function logTail(proc: Component, lines = 40): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(proc.log);
  } catch (error) {
    return `--- ${proc.log}: unreadable (${String(error)})`;
  }
  const tail = text.trimEnd().split("\n").slice(-lines).join("\n");
  return `--- last ${lines} lines of ${proc.log}:\n${tail}\n---`;
}

// ---------------------------------------------------------------------------
// HTTP to the components

interface ApiAccess {
  url: string;
  client: Deno.HttpClient;
  token: string;
}

/** GET (or POST) with a 5 s timeout; the body if 2xx, undefined otherwise. */
async function fetchText(
  url: string,
  opts: {
    client?: Deno.HttpClient;
    token?: string;
    method?: string;
    body?: string;
  },
): Promise<string | undefined> {
  const { response, body } = await request(url, opts);
  return response.ok ? body : undefined;
}

async function apiStatus(api: ApiAccess, path: string): Promise<number> {
  const { response } = await request(`${api.url}${path}`, api);
  return response.status;
}

async function request(
  url: string,
  opts: {
    client?: Deno.HttpClient;
    token?: string;
    method?: string;
    body?: string;
  },
): Promise<{ response: Response; body: string }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 5_000);
  try {
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(url, {
      method: opts.method ?? "GET",
      headers,
      body: opts.body,
      client: opts.client,
      signal: abort.signal,
    });
    return { response, body: await response.text() };
  } finally {
    clearTimeout(timer);
  }
}

/** Asks the authorizer (SubjectAccessReview) whether the ServiceAccount may do `verb` on `resource`. */
async function serviceAccountCan(
  api: ApiAccess,
  namespace: string,
  serviceAccount: string,
  verb: string,
  resource: string,
): Promise<boolean> {
  const review = {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    spec: {
      user: `system:serviceaccount:${namespace}:${serviceAccount}`,
      groups: [
        "system:serviceaccounts",
        `system:serviceaccounts:${namespace}`,
        "system:authenticated",
      ],
      resourceAttributes: { namespace, verb, resource },
    },
  };
  const body = await fetchText(
    `${api.url}/apis/authorization.k8s.io/v1/subjectaccessreviews`,
    {
      ...api,
      method: "POST",
      body: JSON.stringify(review),
    },
  );
  return body !== undefined && JSON.parse(body).status?.allowed === true;
}

// ---------------------------------------------------------------------------
// Certificates, kubeconfigs, manifests

interface Pki {
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  saKey: string;
  tokenFile: string;
}

/**
 * A CA, a serving leaf signed by it (CA:FALSE: rustls refuses a CA as end
 * entity) and the ServiceAccount signing key pair, all RSA-2048 via the
 * openssl CLI.
 */
async function writePki(
  pkiDir: string,
  extraSans: readonly string[],
): Promise<Pki> {
  await Deno.mkdir(pkiDir, { recursive: true, mode: 0o700 });
  const pki: Pki = {
    caCert: join(pkiDir, "ca.crt"),
    caKey: join(pkiDir, "ca.key"),
    serverCert: join(pkiDir, "apiserver.crt"),
    serverKey: join(pkiDir, "apiserver.key"),
    saKey: join(pkiDir, "sa.key"),
    tokenFile: join(pkiDir, "tokens.csv"),
  };
  const config = join(pkiDir, "openssl.cnf");
  await Deno.writeTextFile(
    config,
    [
      "[req]",
      "distinguished_name = dn",
      "prompt = no",
      "[dn]",
      "CN = mca-e2e",
      "[ca_ext]",
      "basicConstraints = critical,CA:TRUE",
      "keyUsage = critical,keyCertSign,cRLSign,digitalSignature",
      "subjectKeyIdentifier = hash",
      "[server_ext]",
      "basicConstraints = critical,CA:FALSE",
      "keyUsage = critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage = serverAuth",
      "subjectKeyIdentifier = hash",
      "authorityKeyIdentifier = keyid",
      "subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default," +
      "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" +
      extraSans.map((san) => `,${san}`).join(""),
      "",
    ].join("\n"),
  );
  await Promise.all(
    [pki.caKey, pki.serverKey, pki.saKey].map((key) =>
      openssl([
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        key,
      ])
    ),
  );
  await openssl([
    "req",
    "-x509",
    "-new",
    "-config",
    config,
    "-extensions",
    "ca_ext",
    "-key",
    pki.caKey,
    "-subj",
    "/CN=mca-e2e-ca",
    "-days",
    "30",
    "-out",
    pki.caCert,
  ]);
  const csr = join(pkiDir, "apiserver.csr");
  await openssl([
    "req",
    "-new",
    "-config",
    config,
    "-key",
    pki.serverKey,
    "-subj",
    "/CN=kube-apiserver",
    "-out",
    csr,
  ]);
  await openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    pki.caCert,
    "-CAkey",
    pki.caKey,
    "-set_serial",
    `0x${randomHex(16)}`,
    "-days",
    "30",
    "-extfile",
    config,
    "-extensions",
    "server_ext",
    "-out",
    pki.serverCert,
  ]);
  return pki;
}

async function openssl(args: string[]): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("openssl", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new Error(`cannot run openssl (is it installed?): ${String(error)}`);
  }
  if (out.code !== 0) {
    throw new Error(
      `openssl ${args.join(" ")} failed:\n${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
}

function kubeconfigJson(
  url: string,
  caPem: string,
  namespace: string,
  token?: string,
): string {
  const caData = btoa(caPem);
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name: "mca-e2e",
      cluster: { server: url, "certificate-authority-data": caData },
    }],
    users: token === undefined
      ? []
      : [{ name: "mca-e2e-admin", user: { token } }],
    contexts: [{
      name: "mca-e2e",
      context: {
        cluster: "mca-e2e",
        namespace,
        ...(token === undefined ? {} : { user: "mca-e2e-admin" }),
      },
    }],
    "current-context": "mca-e2e",
  };
  return JSON.stringify(config, null, 2) + "\n";
}

function setupManifest(
  namespace: string,
  serviceAccount: string,
  rules: readonly PolicyRule[],
): unknown {
  const name = `${serviceAccount}-e2e`;
  return {
    apiVersion: "v1",
    kind: "List",
    items: [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } },
      {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: serviceAccount, namespace },
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name, namespace },
        rules,
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name, namespace },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
        subjects: [{ kind: "ServiceAccount", name: serviceAccount, namespace }],
      },
    ],
  };
}

// ---------------------------------------------------------------------------
// Small helpers

/** Creates `..YYYY_MM_DD_HH_MM_SS.<random digits>` (mode 0755) in `dir`; returns its name. */
async function makeTimestampDir(dir: string): Promise<string> {
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, "").replace(
    /[-T:]/g,
    "_",
  );
  for (let i = 0; i < 100; i++) {
    const name = `..${stamp}.${crypto.getRandomValues(new Uint32Array(1))[0]}`;
    try {
      await Deno.mkdir(join(dir, name), { mode: 0o755 });
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) continue;
      throw error;
    }
    await Deno.chmod(join(dir, name), 0o755);
    return name;
  }
  throw new Error(`cannot create a timestamped directory in ${dir}`);
}

async function readLinkOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await Deno.readLink(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

async function removeIfPresent(path: string): Promise<void> {
  await Deno.remove(path).catch(ignoreNotFound);
}

function removeTreeSync(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (error) {
    ignoreNotFound(error);
  }
}

function ignoreNotFound(error: unknown): void {
  if (!(error instanceof Deno.errors.NotFound)) throw error;
}

function findOnPath(name: string): string | null {
  for (const entry of (Deno.env.get("PATH") ?? "").split(":")) {
    if (entry === "") continue;
    const candidate = join(entry, name);
    try {
      if (Deno.statSync(candidate).isFile) return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)))
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
