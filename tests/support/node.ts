/**
 * One real node for the node tier: containerd (own root, state and socket
 * under the test dir) + a kubelet v1.34 registered with the proof tier's
 * kube-apiserver ({@linkcode startCluster}). Runs as root.
 *
 * Network safety comes first: before the kubelet starts, the pod subnet's
 * only ways out are (1) a DNAT of the `kubernetes` Service IP:443 to the
 * local apiserver and (2) the pod subnet itself; an iptables guard drops
 * every other forwarded packet from the pod subnet, so nothing a Pod sends
 * can leave the machine. {@linkcode Node.stop} removes the rules, the
 * interfaces and every process (by PID), also after a failed start.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { type Cluster, ensureToolchain, startCluster } from "./cluster.ts";
import { buildOciArchive, compileStatic, run } from "./oci_image.ts";

/** The `kubernetes` Service IP for `--service-cluster-ip-range=10.96.0.0/16`. */
export const SERVICE_IP = "10.96.0.1";
/** Pod subnet; exists only on the bridge this harness creates. */
export const POD_SUBNET = "10.244.77.0/24";
const BRIDGE = "mcabr0";
const BRIDGE_IP = "10.244.77.1";
/** Holds the node IP; a bridge with no ports, as this kernel has no `dummy`. */
const NODE_LINK = "mcanode0";
/** The node's InternalIP: an address of an interface this harness creates. */
export const NODE_IP = "10.244.78.1";
export const NODE_NAME = "mca-node";
export const PAUSE_IMAGE = "localhost/pause:mca";
const CHAIN = "MCA-EGRESS";
const PACKAGES = [
  "containerd",
  "runc",
  "containernetworking-plugins",
  "iptables",
  "conntrack",
];

/** A running node plus its control plane. */
export interface Node {
  cluster: Cluster;
  dir: string;
  /** containerd's socket, for `ctr --address`. */
  socket: string;
  logs: { containerd: string; kubelet: string };
  /** Runs `ctr -n k8s.io` against this node's containerd. */
  ctr(args: string[]): Promise<string>;
  /** Imports an OCI archive into containerd's `k8s.io` namespace. */
  importImage(archive: string): Promise<void>;
  /** Packets the egress guard dropped so far. */
  droppedPackets(): Promise<number>;
  /** Last lines of the kubelet and containerd logs, for failure messages. */
  logTails(lines?: number): Promise<string>;
  stop(): Promise<void>;
}

/** Installs the node's Debian packages when missing; fails if it cannot. */
export async function ensureNodePackages(): Promise<void> {
  const have = async (bin: string) =>
    (await new Deno.Command("sh", {
      args: ["-c", `command -v ${bin}`],
      stdout: "null",
      stderr: "null",
    }).output()).success;
  const ok = await have("containerd") && await have("runc") &&
    await have("ctr") && await have("iptables") && await have("conntrack") &&
    await exists("/usr/lib/cni/bridge") && await have("gcc");
  if (ok) return;
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update"], ["install", "-y", ...PACKAGES, "gcc"]]) {
    const out = await new Deno.Command("apt-get", { args, env, stdin: "null" })
      .output();
    if (!out.success) {
      throw new Error(
        `apt-get ${args.join(" ")} failed (exit ${out.code}): the node tier ` +
          `needs ${PACKAGES.join(", ")}; install them or fix apt`,
      );
    }
  }
}

/** Starts a cluster wired for a kubelet, then containerd and the kubelet. */
export async function startNode(opts: { dir: string }): Promise<Node> {
  const dir = resolve(opts.dir);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  await ensureNodePackages();
  const bin = await ensureToolchain();
  if (!bin.kubelet) throw new Error("build.sh reported no kubelet");
  const pki = await writeKubeletPki(join(dir, "node-pki"));
  const kubeletToken = crypto.randomUUID().replaceAll("-", "");
  const cluster = await startCluster({
    dir: join(dir, "cluster"),
    toolchain: bin,
    serverSans: [`IP:${SERVICE_IP}`],
    tokenLines: [
      `${kubeletToken},system:node:${NODE_NAME},kubelet-${NODE_NAME},"system:nodes"`,
    ],
    apiserverArgs: [
      `--kubelet-client-certificate=${pki.clientCert}`,
      `--kubelet-client-key=${pki.clientKey}`,
      "--kubelet-preferred-address-types=InternalIP",
      // No kube-proxy: Service-referenced webhooks are dialled at a ready
      // endpoint's Pod IP (the apiserver's resolver reads EndpointSlices).
      "--enable-aggregator-routing=true",
    ],
    // The chart's webhook Deployment gets Pods and its Service endpoints.
    controllers: [
      "deployment-controller",
      "replicaset-controller",
      "endpointslice-controller",
    ],
  });
  const node = new RunningNode(dir, cluster);
  try {
    await node.setUpNetwork();
    await node.startContainerd();
    await node.importImage(await buildPauseImage(dir));
    await node.startKubelet(bin.kubelet, pki.clientCa, kubeletToken);
    return node;
  } catch (error) {
    const tails = await node.logTails().catch(() => "");
    await node.stop();
    throw new Error(`${(error as Error).message}\n${tails}`);
  }
}

interface Proc {
  name: string;
  child: Deno.ChildProcess;
}

class RunningNode implements Node {
  readonly socket: string;
  readonly logs: { containerd: string; kubelet: string };
  #procs: Proc[] = [];
  #cleanups: (() => Promise<unknown>)[] = [];
  #stopped = false;

  constructor(readonly dir: string, readonly cluster: Cluster) {
    this.socket = join(dir, "containerd", "containerd.sock");
    this.logs = {
      containerd: join(dir, "containerd.log"),
      kubelet: join(dir, "kubelet.log"),
    };
  }

  /** Interfaces, the DNAT to the apiserver and the egress guard. */
  async setUpNetwork(): Promise<void> {
    const ip = (args: string) => run("ip", args.split(" "));
    await ip(`link add ${NODE_LINK} type bridge`);
    this.#cleanups.push(() => ip(`link del ${NODE_LINK}`));
    await ip(`addr add ${NODE_IP}/32 dev ${NODE_LINK}`);
    await ip(`link set ${NODE_LINK} up`);
    await ip(`link add ${BRIDGE} type bridge`);
    this.#cleanups.push(() => ip(`link del ${BRIDGE}`));
    await ip(`addr add ${BRIDGE_IP}/24 dev ${BRIDGE}`);
    await ip(`link set ${BRIDGE} up`);
    await Deno.writeTextFile(
      `/proc/sys/net/ipv4/conf/${BRIDGE}/route_localnet`,
      "1",
    );
    // No IPv6 on the bridge: a pod's v6 traffic has nowhere to go.
    await Deno.writeTextFile(
      `/proc/sys/net/ipv6/conf/${BRIDGE}/disable_ipv6`,
      "1",
    ).catch(() => {});
    const ipt = (table: string, args: string) =>
      run("iptables", ["-w", "-t", table, ...args.split(" ")]);
    const dnat =
      `PREROUTING -s ${POD_SUBNET} -d ${SERVICE_IP}/32 -p tcp --dport 443 ` +
      `-j DNAT --to-destination 127.0.0.1:${this.cluster.port}`;
    await ipt("nat", `-I ${dnat}`);
    this.#cleanups.push(() => ipt("nat", `-D ${dnat}`));
    await ipt("filter", `-N ${CHAIN}`);
    this.#cleanups.push(() => ipt("filter", `-X ${CHAIN}`));
    await ipt("filter", `-A ${CHAIN} -d ${POD_SUBNET} -j RETURN`);
    this.#cleanups.push(() => ipt("filter", `-F ${CHAIN}`));
    await ipt("filter", `-A ${CHAIN} -j DROP`);
    // Forwarded = not for this machine: only the pod subnet itself may pass.
    const jump = `FORWARD -s ${POD_SUBNET} -j ${CHAIN}`;
    await ipt("filter", `-I ${jump}`);
    this.#cleanups.push(() => ipt("filter", `-D ${jump}`));
  }

  async startContainerd(): Promise<void> {
    const root = join(this.dir, "containerd");
    const cniConf = join(this.dir, "cni");
    await Deno.mkdir(cniConf, { recursive: true });
    await Deno.writeTextFile(
      join(cniConf, "10-mca.conflist"),
      JSON.stringify({
        cniVersion: "0.4.0",
        name: "mca-pods",
        plugins: [{
          type: "bridge",
          bridge: BRIDGE,
          isGateway: true,
          ipMasq: false,
          ipam: {
            type: "host-local",
            ranges: [[{ subnet: POD_SUBNET, gateway: BRIDGE_IP }]],
            routes: [{ dst: "0.0.0.0/0" }],
            dataDir: join(this.dir, "cni-ipam"),
          },
        }],
      }),
    );
    const config = join(this.dir, "containerd.toml");
    await Deno.writeTextFile(
      config,
      [
        "version = 2",
        `root = "${join(root, "root")}"`,
        `state = "${join(root, "state")}"`,
        "oom_score = 0",
        "[grpc]",
        `  address = "${this.socket}"`,
        '[plugins."io.containerd.grpc.v1.cri"]',
        `  sandbox_image = "${PAUSE_IMAGE}"`,
        "  restrict_oom_score_adj = true",
        "  netns_mounts_under_state_dir = true",
        '[plugins."io.containerd.grpc.v1.cri".cni]',
        '  bin_dir = "/usr/lib/cni"',
        `  conf_dir = "${cniConf}"`,
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        '  runtime_type = "io.containerd.runc.v2"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
        "  SystemdCgroup = false",
        "",
      ].join("\n"),
    );
    this.#spawn("containerd", "containerd", ["--config", config]);
    await this.#waitFor(
      "containerd answers on its socket",
      30_000,
      async () => (await this.ctr(["version"]).then(() => true, () => false)),
    );
  }

  async startKubelet(kubelet: string, clientCa: string, token: string) {
    const kdir = join(this.dir, "kubelet");
    await Deno.mkdir(join(kdir, "logs"), { recursive: true });
    const kubeconfig = join(kdir, "kubeconfig.json");
    const ca = await Deno.readTextFile(this.cluster.caFile);
    await Deno.writeTextFile(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{
          name: "c",
          cluster: {
            server: this.cluster.url,
            "certificate-authority-data": btoa(ca),
          },
        }],
        users: [{ name: "u", user: { token } }],
        contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
        "current-context": "c",
      }),
      { mode: 0o600 },
    );
    const [port, healthz] = freePorts(2);
    const config = join(kdir, "config.json");
    await Deno.writeTextFile(
      config,
      JSON.stringify(kubeletConfig({
        clientCa,
        port,
        healthz,
        podLogsDir: join(kdir, "logs"),
      })),
    );
    this.#spawn("kubelet", kubelet, [
      `--config=${config}`,
      `--kubeconfig=${kubeconfig}`,
      `--root-dir=${join(kdir, "root")}`,
      `--cert-dir=${join(kdir, "pki")}`,
      `--volume-plugin-dir=${join(kdir, "plugins")}`,
      `--container-runtime-endpoint=unix://${this.socket}`,
      `--node-ip=${NODE_IP}`,
      `--hostname-override=${NODE_NAME}`,
      "--v=1",
    ]);
    await this.#waitFor(`node ${NODE_NAME} Ready`, 60_000, async () => {
      const r = await this.cluster.kubectl([
        "get",
        "node",
        NODE_NAME,
        "-o",
        "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
      ], { check: false });
      return r.stdout.trim() === "True";
    });
  }

  ctr(args: string[]): Promise<string> {
    return run("ctr", ["--address", this.socket, "-n", "k8s.io", ...args]);
  }

  async importImage(archive: string): Promise<void> {
    await this.ctr(["images", "import", archive]);
  }

  async droppedPackets(): Promise<number> {
    const out = await run("iptables", ["-w", "-L", CHAIN, "-v", "-n", "-x"]);
    const line = out.split("\n").find((l) => /\sDROP\s/.test(l));
    return Number(line?.trim().split(/\s+/)[0] ?? NaN);
  }

  async logTails(lines = 40): Promise<string> {
    const parts: string[] = [];
    for (const [name, file] of Object.entries(this.logs)) {
      const text = await Deno.readTextFile(file).catch(() => "");
      parts.push(`--- ${name} (${file}) ---`);
      parts.push(text.split("\n").slice(-lines).join("\n"));
    }
    return parts.join("\n");
  }

  /** Pods' tasks first (their shims), then kubelet, containerd, cluster. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const kubelet = this.#procs.find((p) => p.name === "kubelet");
    if (kubelet) await stopProc(kubelet);
    if (this.#procs.some((p) => p.name === "containerd")) {
      await this.#killTasks().catch(() => {});
    }
    for (const p of this.#procs.reverse()) await stopProc(p);
    await this.#unmountUnder(this.dir);
    for (const cleanup of this.#cleanups.reverse()) {
      await cleanup().catch(() => {});
    }
    await this.cluster.stop();
  }

  async #killTasks(): Promise<void> {
    const out = await this.ctr(["tasks", "list", "-q"]);
    for (const id of out.split("\n").filter(Boolean)) {
      await this.ctr(["tasks", "kill", "-s", "SIGKILL", id]).catch(() => {});
    }
    // Shims exit once their task is gone; wait for the list to drain.
    await this.#waitFor(
      "containerd tasks gone",
      20_000,
      async () =>
        (await this.ctr(["tasks", "list", "-q"]).catch(() => "")).trim() === "",
    )
      .catch(() => {});
    for (const id of out.split("\n").filter(Boolean)) {
      await this.ctr(["tasks", "delete", id]).catch(() => {});
    }
  }

  async #unmountUnder(dir: string): Promise<void> {
    const mounts = (await Deno.readTextFile("/proc/self/mounts")).split("\n")
      .map((l) => l.split(" ")[1]).filter((m) => m?.startsWith(dir + "/"))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await run("umount", ["-l", m]).catch(() => {});
  }

  #spawn(name: string, cmd: string, args: string[]) {
    const log = Deno.openSync(join(this.dir, `${name}.log`), {
      write: true,
      create: true,
      append: true,
    });
    const child = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    child.stdout.pipeTo(new WritableStream(writer(log))).catch(() => {});
    child.stderr.pipeTo(new WritableStream(writer(log))).catch(() => {});
    this.#procs.push({ name, child });
  }

  async #waitFor(what: string, ms: number, check: () => Promise<boolean>) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (await check().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  }
}

function writer(file: Deno.FsFile): UnderlyingSink<Uint8Array> {
  return { write: (chunk) => void file.writeSync(chunk) };
}

async function stopProc(p: Proc): Promise<void> {
  try {
    p.child.kill("SIGTERM");
  } catch { /* already gone */ }
  const timer = setTimeout(() => {
    try {
      p.child.kill("SIGKILL");
    } catch { /* gone */ }
  }, 10_000);
  await p.child.status;
  clearTimeout(timer);
}

function kubeletConfig(o: {
  clientCa: string;
  port: number;
  healthz: number;
  podLogsDir: string;
}) {
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    cgroupDriver: "cgroupfs",
    failCgroupV1: false,
    failSwapOn: false,
    oomScoreAdj: 0,
    address: NODE_IP,
    port: o.port,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: o.healthz,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: o.clientCa },
    },
    authorization: { mode: "Webhook" },
    makeIPTablesUtilChains: false,
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: {
      "memory.available": "1Mi",
      "nodefs.available": "1%",
      "imagefs.available": "1%",
      "nodefs.inodesFree": "1%",
    },
    podLogsDir: o.podLogsDir,
    // Projected volumes are refreshed on a Pod's periodic sync (default 1m):
    // 10 s lets the rotation test see the kubelet's new token soon after it
    // is due (80 % of its lifetime) instead of up to a minute later.
    syncFrequency: "10s",
    resolvConf: "",
    serializeImagePulls: false,
  };
}

/** A CA the kubelet trusts and the apiserver's client cert (system:masters). */
async function writeKubeletPki(dir: string) {
  await Deno.mkdir(dir, { recursive: true });
  const f = (n: string) => join(dir, n);
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.crt"),
    "-subj",
    "/CN=mca-kubelet-client-ca",
    "-days",
    "30",
  ]);
  await run("openssl", [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    f("client.key"),
    "-out",
    f("client.csr"),
    "-subj",
    "/O=system:masters/CN=kube-apiserver-kubelet-client",
  ]);
  await Deno.writeTextFile(f("ext.cnf"), "extendedKeyUsage = clientAuth\n");
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    f("client.csr"),
    "-CA",
    f("ca.crt"),
    "-CAkey",
    f("ca.key"),
    "-CAcreateserial",
    "-days",
    "30",
    "-extfile",
    f("ext.cnf"),
    "-out",
    f("client.crt"),
  ]);
  return {
    clientCa: f("ca.crt"),
    clientCert: f("client.crt"),
    clientKey: f("client.key"),
  };
}

/** The sandbox image: a static C program that blocks in pause(). */
async function buildPauseImage(dir: string): Promise<string> {
  const work = join(dir, "images", "pause");
  await Deno.mkdir(join(work, "rootfs"), { recursive: true });
  await Deno.writeTextFile(
    join(work, "pause.c"),
    "#include <signal.h>\n#include <unistd.h>\n#include <stdlib.h>\n" +
      "static void bye(int s) { (void)s; _exit(0); }\n" +
      "int main(void) { signal(SIGTERM, bye); signal(SIGINT, bye);\n" +
      "  for (;;) pause(); }\n",
  );
  await compileStatic(join(work, "pause.c"), join(work, "rootfs", "pause"));
  return await buildOciArchive({
    name: PAUSE_IMAGE,
    rootfs: join(work, "rootfs"),
    out: join(work, "pause.tar"),
    entrypoint: ["/pause"],
  });
}

function freePorts(n: number): number[] {
  const ls = Array.from(
    { length: n },
    () => Deno.listen({ hostname: NODE_IP, port: 0 }),
  );
  const ports = ls.map((l) => (l.addr as Deno.NetAddr).port);
  ls.forEach((l) => l.close());
  return ports;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}
