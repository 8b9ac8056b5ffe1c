/**
 * Simulated pods: run a host command the way a kubelet would run one
 * container of a Pod, without a kubelet or a container runtime.
 *
 * What the simulated container gets, as a kubelet would give it:
 * - its own mount namespace (`unshare -m --propagation private`), a fresh
 *   tmpfs on `/run` (on this host `/var/run` is a symlink to `/run` and
 *   `/run/secrets` does not exist, so the service-account paths cannot be
 *   created on the host itself), and every `volumeMounts` entry of the
 *   container bind-mounted from a host directory the caller maps to the
 *   volume's name, read-only where the mount says `readOnly: true`;
 * - the environment a kubelet builds: a minimal image environment (`PATH`,
 *   `HOME`, `LANG`), then the `kubernetes` Service's variables (which a
 *   kubelet always injects, service links enabled or not), then the
 *   container's own `env` entries, which override both.
 *
 * - optionally a network namespace shared by the Pod's containers (what the
 *   kubelet's pause container holds), see {@linkcode startPodNetwork}: its
 *   own loopback, so `127.0.0.1:6443` of one simulated Pod never collides
 *   with another test's, and only the ports forwarded to the host (the API
 *   server) reachable at their host address.
 *
 * What it does not do: no PID/user namespaces, no image filesystem
 * (the command is a host binary), no `securityContext` (the process runs as
 * the caller, root), no `valueFrom`/`envFrom`/`subPath` (rejected loudly).
 *
 * Nothing on the host changes: mounts live and die with the namespace, and a
 * mount point missing outside `/run` is created in a tmpfs-backed overlay of
 * its nearest existing ancestor, never on the host's disk.
 *
 * ```ts
 * const child = spawnInPod(injectedYaml, "app", {
 *   volumes: { "kube-api-access-mca-sa": "tmp/x/mca-sa" },
 *   command: ["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"],
 *   serviceEnv: cluster.serviceEnv(),
 *   home: "tmp/x/home",
 * }, { stdout: "piped" });
 * ```
 *
 * @module
 */

import { dirname, isAbsolute, join, posix, resolve } from "node:path";
import { parseAllDocuments } from "yaml";

/** A JSON object as found in a manifest. */
type JsonObject = { [key: string]: unknown };

/** How to run one container of a Pod; see {@linkcode podCommand}. */
export interface PodCommandOptions {
  /**
   * Host directory for each volume the container mounts, by volume name
   * (e.g. `kube-api-access-mca-sa` → `tmp/x/mca-sa`). Every volume the
   * container mounts must be listed: a missing one throws.
   */
  volumes: Record<string, string>;
  /** The container's process (a host program; images are not simulated). */
  command: string[];
  /**
   * Where the `kubernetes` Service is: `KUBERNETES_SERVICE_HOST` and
   * `KUBERNETES_SERVICE_PORT` as `Cluster.serviceEnv()` returns them.
   */
  serviceEnv: Record<string, string>;
  /** `HOME` of the process (tools write caches there: keep it under tmp/). */
  home: string;
  /**
   * More variables of the image's environment (e.g. `DENO_DIR`); the
   * kubelet's and the container's variables override them.
   */
  imageEnv?: Record<string, string>;
  /** Working directory; default `home`. */
  cwd?: string;
  /** The Pod's network namespace ({@linkcode PodNetwork.nsPath}); default: the host's. */
  netns?: string;
}

/** A ready-to-spawn invocation: argv and the complete environment. */
export interface PodInvocation {
  /** argv; `cmd[0]` is an absolute path. */
  cmd: string[];
  /** The whole environment (spawn with `clearEnv: true`). */
  env: Record<string, string>;
  /** Working directory. */
  cwd: string;
}

/** Where the kubelet mounts nothing but this module needs scratch space. */
const SCRATCH = "/run/.mca-simulated-pod";
const IMAGE_PATH =
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * Parses a Pod out of a manifest stream (such as `injectManifests` output),
 * or returns a Pod object as is. Throws unless exactly one Pod is found.
 */
export function parsePod(pod: string | JsonObject): JsonObject {
  if (typeof pod !== "string") return checkPod(pod);
  const pods: JsonObject[] = [];
  for (const doc of parseAllDocuments(pod)) {
    if (doc.errors.length > 0) {
      throw new Error(`invalid Pod manifest: ${doc.errors[0].message}`);
    }
    const value = doc.toJS();
    if (isObject(value) && value.kind === "Pod") pods.push(value);
  }
  if (pods.length !== 1) {
    throw new Error(
      `expected exactly one Pod in the manifest, found ${pods.length}`,
    );
  }
  return checkPod(pods[0]);
}

function checkPod(pod: JsonObject): JsonObject {
  if (pod.kind !== "Pod" || !isObject(pod.spec)) {
    throw new Error("not a Pod object (kind Pod with a spec)");
  }
  return pod;
}

/** The container named `name`, from `initContainers` or `containers`. */
export function findContainer(
  pod: string | JsonObject,
  name: string,
): JsonObject {
  const spec = parsePod(pod).spec as JsonObject;
  const all = [
    ...arrayOf(spec.initContainers),
    ...arrayOf(spec.containers),
  ];
  const found = all.filter((c) => c.name === name);
  if (found.length !== 1) {
    throw new Error(
      `the Pod has ${found.length} containers named ${
        JSON.stringify(name)
      } (has: ${all.map((c) => c.name).join(", ")})`,
    );
  }
  return found[0];
}

/**
 * The `kubernetes` Service's variables as a kubelet injects them into every
 * container. A real cluster's Service listens on `<cluster IP>:443`; the
 * test cluster's kube-apiserver listens on a random loopback port and there
 * is no Service in front of it, so the values carry the real host and port
 * (that is where a client that follows them ends up). The variable NAMES keep
 * the `443` a real cluster has, because a client that reads, say,
 * `KUBERNETES_PORT_443_TCP_ADDR` looks it up by that literal name; with the
 * random port in the names such a client would find nothing, fall back to
 * `KUBERNETES_SERVICE_HOST`, and pass here while bypassing MCA in a cluster.
 */
export function kubeletServiceEnv(
  serviceEnv: Record<string, string>,
): Record<string, string> {
  const host = serviceEnv.KUBERNETES_SERVICE_HOST;
  const port = serviceEnv.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new Error(
      "serviceEnv needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT",
    );
  }
  const hostPort = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  return {
    KUBERNETES_SERVICE_HOST: host,
    KUBERNETES_SERVICE_PORT: port,
    KUBERNETES_SERVICE_PORT_HTTPS: port,
    KUBERNETES_PORT: `tcp://${hostPort}`,
    KUBERNETES_PORT_443_TCP: `tcp://${hostPort}`,
    KUBERNETES_PORT_443_TCP_PROTO: "tcp",
    KUBERNETES_PORT_443_TCP_PORT: port,
    KUBERNETES_PORT_443_TCP_ADDR: host,
  };
}

/**
 * Builds the invocation that runs `opts.command` as container
 * `containerName` of `pod` (see the module doc for what that means). The
 * result needs root (mount namespaces) and is meant for
 * `new Deno.Command(cmd[0], { args: cmd.slice(1), env, clearEnv: true })`.
 */
export function podCommand(
  pod: string | JsonObject,
  containerName: string,
  opts: PodCommandOptions,
): PodInvocation {
  const container = findContainer(pod, containerName);
  if (opts.command.length === 0) throw new Error("empty command");
  const home = resolve(opts.home);
  const env: Record<string, string> = {
    PATH: IMAGE_PATH,
    HOME: home,
    LANG: "C.UTF-8",
    ...opts.imageEnv,
    ...kubeletServiceEnv(opts.serviceEnv),
  };
  Object.assign(env, containerEnv(container, env));

  const mounts = arrayOf(container.volumeMounts).map((m) =>
    mountOf(m, opts.volumes, containerName)
  );
  const script = mountScript(mounts);
  const cmd = [
    "/usr/bin/setpriv",
    // The container dies with the test process, never outlives it.
    "--pdeathsig",
    "KILL",
    "--",
    ...(opts.netns ? ["/usr/bin/nsenter", `--net=${opts.netns}`, "--"] : []),
    "/usr/bin/unshare",
    "--mount",
    "--propagation",
    "private",
    "--",
    "/bin/sh",
    "-c",
    script,
    `pod-${containerName}`,
    ...opts.command,
  ];
  return { cmd, env, cwd: resolve(opts.cwd ?? home) };
}

/** Options of {@linkcode spawnInPod} about stdio. */
export interface SpawnStdio {
  stdin?: "piped" | "inherit" | "null";
  stdout?: "piped" | "inherit" | "null";
  stderr?: "piped" | "inherit" | "null";
}

/** Spawns {@linkcode podCommand}'s invocation; stdio defaults to piped out, null in. */
export function spawnInPod(
  pod: string | JsonObject,
  containerName: string,
  opts: PodCommandOptions,
  stdio: SpawnStdio = {},
): Deno.ChildProcess {
  const inv = podCommand(pod, containerName, opts);
  return new Deno.Command(inv.cmd[0], {
    args: inv.cmd.slice(1),
    env: inv.env,
    clearEnv: true,
    cwd: inv.cwd,
    stdin: stdio.stdin ?? "null",
    stdout: stdio.stdout ?? "piped",
    stderr: stdio.stderr ?? "piped",
  }).spawn();
}

/** A Pod's network namespace; see {@linkcode startPodNetwork}. */
export interface PodNetwork {
  /** Pass as {@linkcode PodCommandOptions.netns}. */
  readonly nsPath: string;
  /** The process holding the namespace (it also runs the port bridges). */
  readonly pid: number;
  /** Stops the bridges and releases the namespace. Idempotent. */
  close(): Promise<void>;
}

/** A host TCP endpoint made reachable at the same address inside a Pod. */
export interface ForwardedPort {
  host: string;
  port: number;
}

/**
 * The in-namespace half of a bridge, run with `deno eval`: listens on each
 * forwarded address inside the Pod and relays every connection to a Unix
 * socket (file system sockets cross network namespaces).
 */
const BRIDGE_CODE = `
const specs = JSON.parse(Deno.env.get("MCA_POD_BRIDGE"));
async function relay(conn, path) {
  try {
    const up = await Deno.connect({ transport: "unix", path });
    await Promise.allSettled([
      conn.readable.pipeTo(up.writable),
      up.readable.pipeTo(conn.writable),
    ]);
  } catch {
    try { conn.close(); } catch { /* closed */ }
  }
}
for (const { host, port, sock } of specs) {
  const listener = Deno.listen({ hostname: host, port });
  (async () => { for await (const conn of listener) relay(conn, sock); })();
}
console.log("ready");
`;

/**
 * Starts a Pod network namespace with its loopback up, and makes each of
 * `forward` (e.g. the API server's `127.0.0.1:<port>`) reachable inside it
 * at the same address, through a Unix socket under `dir` and a relay in
 * this process. Needs root, `ip` (iproute2) and util-linux.
 */
export async function startPodNetwork(opts: {
  dir: string;
  forward: ForwardedPort[];
}): Promise<PodNetwork> {
  const dir = resolve(opts.dir);
  await Deno.mkdir(dir, { recursive: true });
  const listeners: Deno.Listener[] = [];
  const conns = new Set<Deno.Conn>();
  const specs = opts.forward.map((f, i) => ({
    host: f.host,
    port: f.port,
    sock: join(dir, `fwd${i}.sock`),
  }));
  for (const spec of specs) {
    await Deno.remove(spec.sock).catch(() => {});
    const listener = Deno.listen({ transport: "unix", path: spec.sock });
    listeners.push(listener);
    (async () => {
      for await (const conn of listener) {
        conns.add(conn);
        (async () => {
          try {
            const up = await Deno.connect({
              hostname: spec.host,
              port: spec.port,
            });
            conns.add(up);
            await Promise.allSettled([
              conn.readable.pipeTo(up.writable),
              up.readable.pipeTo(conn.writable),
            ]);
            conns.delete(up);
          } catch {
            // the peer went away
          } finally {
            conns.delete(conn);
            try {
              conn.close();
            } catch {
              // closed
            }
          }
        })();
      }
    })().catch(() => {});
  }
  const child = new Deno.Command("/usr/bin/setpriv", {
    args: [
      "--pdeathsig",
      "KILL",
      "--",
      "/usr/bin/unshare",
      "--net",
      "--",
      "/bin/sh",
      "-c",
      'ip link set lo up && exec "$@"',
      "pod-network",
      Deno.execPath(),
      "eval",
      BRIDGE_CODE,
    ],
    clearEnv: true,
    env: {
      PATH: IMAGE_PATH,
      HOME: dir,
      NO_COLOR: "1",
      MCA_POD_BRIDGE: JSON.stringify(specs),
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.status;
      for (const l of listeners) l.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      for (const spec of specs) await Deno.remove(spec.sock).catch(() => {});
    })();
  // The namespace is usable once the bridge says so.
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const ready = (async () => {
    while (!seen.includes("ready\n")) {
      const { value, done } = await reader.read();
      if (done) return false;
      seen += value;
    }
    return true;
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((r) =>
    timer = setTimeout(() => r(false), 30_000)
  );
  const ok = await Promise.race([ready, timeout]);
  clearTimeout(timer);
  if (!ok) {
    await close();
    const err = new TextDecoder().decode(
      await new Response(child.stderr).arrayBuffer().catch(() =>
        new ArrayBuffer(0)
      ),
    );
    throw new Error(`pod network did not start: ${seen}${err}`);
  }
  // Nothing more is read: drop the pipes (the bridge prints nothing else).
  reader.cancel().catch(() => {});
  child.stderr.cancel().catch(() => {});
  return { nsPath: `/proc/${child.pid}/ns/net`, pid: child.pid, close };
}

// ---------------------------------------------------------------------------

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

function mountOf(
  mount: JsonObject,
  volumes: Record<string, string>,
  containerName: string,
): Mount {
  const name = String(mount.name);
  const target = String(mount.mountPath ?? "");
  if (mount.subPath !== undefined || mount.subPathExpr !== undefined) {
    throw new Error(`volumeMount ${name}: subPath is not simulated`);
  }
  if (!isAbsolute(target)) {
    throw new Error(`volumeMount ${name}: mountPath must be absolute`);
  }
  const host = volumes[name];
  if (host === undefined) {
    throw new Error(
      `container ${containerName} mounts volume ${
        JSON.stringify(name)
      } at ${target}: pass its host directory in opts.volumes`,
    );
  }
  const source = resolve(host);
  if (/^\/(var\/)?run(\/|$)/.test(source)) {
    throw new Error(
      `volume ${name}: host directory ${source} is under /run, which the pod's tmpfs hides`,
    );
  }
  if (!Deno.statSync(source).isDirectory) {
    throw new Error(`volume ${name}: ${source} is not a directory`);
  }
  return {
    source,
    target: canonical(target),
    readOnly: mount.readOnly === true,
  };
}

/** `/var/run/...` → `/run/...` (the host's symlink), `..`/`.`/`//` removed. */
function canonical(path: string): string {
  const p = posix.normalize(path).replace(/\/+$/, "") || "/";
  return p === "/var/run" || p.startsWith("/var/run/") ? p.slice(4) : p;
}

/** The nearest ancestor of `path` (or `path`) that exists on the host. */
function existingAncestor(path: string): string {
  for (let p = path;; p = dirname(p)) {
    try {
      Deno.statSync(p);
      return p;
    } catch {
      if (p === "/") return p;
    }
  }
}

function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The script `sh -c` runs inside the new mount namespace before `exec`ing
 * the container's command ("$@").
 */
function mountScript(mounts: Mount[]): string {
  const lines = [
    "set -eu",
    "mount -t tmpfs -o mode=0755 tmpfs /run",
    `mkdir -p ${shq(SCRATCH)}`,
  ];
  // Parents before children, as nested mounts need.
  const sorted = [...mounts].sort((a, b) =>
    a.target.split("/").length - b.target.split("/").length
  );
  const overlaid = new Set<string>();
  for (const m of sorted) {
    if (m.target !== "/run" && !m.target.startsWith("/run/")) {
      const anchor = existingAncestor(m.target);
      if (anchor !== m.target && !overlaid.has(anchor)) {
        if (anchor === "/") {
          throw new Error(
            `cannot create mount point ${m.target} without writing to the host's /`,
          );
        }
        // The mount point does not exist: give its nearest existing
        // ancestor a tmpfs-backed overlay so mkdir never touches the disk.
        const n = overlaid.size;
        const upper = join(SCRATCH, `overlay${n}`, "upper");
        const work = join(SCRATCH, `overlay${n}`, "work");
        lines.push(
          `mkdir -p ${shq(upper)} ${shq(work)}`,
          `mount -t overlay overlay -o ${
            shq(`lowerdir=${anchor},upperdir=${upper},workdir=${work}`)
          } ${shq(anchor)}`,
        );
        overlaid.add(anchor);
      }
    }
    lines.push(
      `mkdir -p ${shq(m.target)}`,
      `mount --bind ${shq(m.source)} ${shq(m.target)}`,
    );
    if (m.readOnly) {
      lines.push(`mount -o remount,bind,ro ${shq(m.target)}`);
    }
  }
  lines.push('exec "$@"');
  return lines.join("\n");
}

/**
 * The container's `env` list resolved like the kubelet does: later entries
 * see earlier ones (and the service variables) through `$(NAME)`, `$$` is a
 * literal `$`, unknown references stay as written.
 */
function containerEnv(
  container: JsonObject,
  base: Record<string, string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of arrayOf(container.env)) {
    const name = String(entry.name);
    if (entry.valueFrom !== undefined) {
      throw new Error(`env ${name}: valueFrom is not simulated`);
    }
    const raw = entry.value === undefined ? "" : String(entry.value);
    const seen = { ...base, ...out };
    out[name] = raw.replace(
      /\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g,
      (match, ref?: string) => {
        if (match === "$$") return "$";
        return ref !== undefined && ref in seen ? seen[ref] : match;
      },
    );
  }
  if (container.envFrom !== undefined) {
    throw new Error(`container ${container.name}: envFrom is not simulated`);
  }
  return out;
}

function arrayOf(value: unknown): JsonObject[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new Error("expected a list");
  return value.filter(isObject);
}

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
