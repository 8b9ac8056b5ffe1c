// deno-lint-ignore-file no-explicit-any -- Pod status JSON from kubectl
/**
 * Node tier: a real kubelet + containerd against the proof tier's
 * kube-apiserver (tests/support/node.ts). The network guard: a Pod
 * reaches the `kubernetes` Service IP (DNAT to the local apiserver) and
 * nothing else. Then injected Pods: ordering, calls via mca, and every
 * streaming call (exec, attach, port-forward, logs -f, cp) issued by a
 * kubectl INSIDE an app container, so it goes app → mca → apiserver →
 * kubelet; a long-running client-go app (list, create, watch, 403) that
 * outlives an mca SIGKILL; mca restarted by the kubelet; the Helm chart's
 * webhook Pod on the node injecting a plain Pod of a labelled namespace;
 * deletion order; why shareProcessNamespace is refused; the kubelet's
 * token rotation.
 *
 * Wall time: the images are built while the node starts; the rotation Pod
 * (~480 s after its token was issued, checked last: it sets the tier's
 * length) and the Pods of later steps are applied first, and every other
 * step runs during that wait.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { ensureToolchain } from "../support/cluster.ts";
import {
  type Node,
  NODE_NAME,
  SERVICE_IP,
  startNode,
} from "../support/node.ts";
import { buildMcaImage, MCA_IMAGE } from "../../deploy/image/build.ts";
import { injectManifests } from "../../lib/inject/manifest.ts";
import {
  injectPodSpec,
  type JsonObject,
  REAL_SA_VOLUME,
  SA_PATH,
} from "../../lib/inject/pod_spec.ts";
import { buildOciArchive, compileStatic } from "../support/oci_image.ts";
import {
  buildClientGoImage,
  clientGoPod,
  firstRound,
  survivesMcaKill,
} from "../support/node_client_go.ts";
import {
  installChart,
  labelledNamespace,
  plainPodInjected,
  refusedWithoutWebhook,
  webhookRunning,
} from "../support/node_webhook.ts";
import {
  app,
  buildAppImage,
  execIn,
  type ExecResult,
  followLog,
  killMca,
  mcaLog,
  parseLog,
  podJson,
  streamLines,
  type Target,
  toolApp,
  until,
  waitForCalls,
} from "../support/node_apps.ts";

const DIR = "tmp/e2e/node";
/** Outside DIR: startNode empties DIR while the images are being built. */
const IMAGES_DIR = "tmp/e2e/node-images";
const PROBE_IMAGE = "localhost/probe:mca";
const COMPAT_FILE = "tmp/e2e/node-compat.md";

/** connect() to each ip:port with a 3 s timeout; prints "ip:port ok|fail". */
const PROBE_C = `
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[i + 1]));
    inet_pton(AF_INET, argv[i], &a.sin_addr);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    fcntl(s, F_SETFL, O_NONBLOCK);
    int r = connect(s, (struct sockaddr *)&a, sizeof a), err = 0;
    if (r < 0 && errno == EINPROGRESS) {
      struct pollfd p = {s, POLLOUT, 0};
      socklen_t l = sizeof err;
      if (poll(&p, 1, 3000) == 1) getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l);
      else err = ETIMEDOUT;
    } else if (r < 0) err = errno;
    printf("%s:%s %s\\n", argv[i], argv[i + 1], err ? "fail" : "ok");
    fflush(stdout);
    close(s);
  }
  return 0;
}
`;

async function buildProbeImage(dir: string): Promise<string> {
  const rootfs = join(dir, "rootfs");
  await Deno.mkdir(rootfs, { recursive: true });
  await Deno.writeTextFile(join(dir, "probe.c"), PROBE_C);
  await compileStatic(join(dir, "probe.c"), join(rootfs, "probe"));
  return await buildOciArchive({
    name: PROBE_IMAGE,
    rootfs,
    out: join(dir, "probe.tar"),
    entrypoint: ["/probe"],
  });
}

/** Polls the Pod's phase until it is terminal; returns the Pod JSON. */
async function waitTerminal(node: Node, name: string, ms: number) {
  const deadline = Date.now() + ms;
  let pod: Record<string, any> = {};
  while (Date.now() < deadline) {
    pod = await podJson(node, name);
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") return pod;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(
    `pod ${name} not terminal after ${ms} ms: ${
      JSON.stringify(pod.status)
    }\n${await node.logTails()}`,
  );
}

async function logsOf(node: Node, pod: string, container: string) {
  const r = await node.cluster.kubectl([
    "logs",
    pod,
    "-c",
    container,
    "-n",
    node.cluster.namespace,
  ], { check: false });
  return r.stdout + r.stderr;
}

/** Containers of the `streams` Pod that the stream steps talk to. */
const STREAM_HELPERS = [
  // Serves 127.0.0.1:8080 in the Pod (port-forward target, cp target: tar).
  toolApp("echo", ["echo", "8080"]),
  // Read stdin once, echo it: what `kubectl attach -i` talks to.
  toolApp("attach-ws", ["cat"], { stdin: true, stdinOnce: true }),
  toolApp("attach-spdy", ["cat"], { stdin: true, stdinOnce: true }),
  // Writes 15 timed lines once poked on 127.0.0.1:9090, then exits.
  toolApp("ticker", ["tick", "15", "200", "9090"]),
];

/** The kubectl columns of tmp/e2e/node-compat.md, filled as steps pass. */
const COMPAT_OPS = [
  "exec (WS)",
  "exec (SPDY)",
  "attach -i (WS)",
  "attach -i (SPDY)",
  "port-forward (WS)",
  "port-forward (SPDY)",
  "logs -f",
  "cp (to Pod)",
  "cp (from Pod)",
] as const;

/** The client-go app's columns (a long-running app, not a one-shot CLI). */
const APP_OPS = [
  "list",
  "create",
  "watch",
  "403",
  "mca SIGKILLed: app restartCount 0",
  "watch re-opened, calls go on",
] as const;

/** `| a | b |` rows of a Markdown table: header, rule, rows. */
function table(header: readonly string[], rows: string[][]): string[] {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [
    line(header),
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map(line),
  ];
}

function compatReport() {
  const passed = new Set<string>();
  const appPassed = new Set<string>();
  const cell = (set: Set<string>) => (op: string) =>
    set.has(op) ? "pass" : "**FAIL**";
  return {
    pass: (op: (typeof COMPAT_OPS)[number]) => void passed.add(op),
    passApp: (op: (typeof APP_OPS)[number]) => void appPassed.add(op),
    /** The client-go version the app was built with (set when built). */
    clientGo: "client-go (not built)",
    /** Writes the tables; an op whose step did not pass is FAIL. */
    async write(file: string, version: string) {
      const text = [
        "# MCA node tier: real clients in real Pods, through mca",
        "",
        `- generated: ${new Date().toISOString()} by tests/e2e/node_test.ts`,
        "- each client runs inside an app container of an injected Pod on a",
        "  real kubelet v1.34.4 + containerd, with its in-cluster config only;",
        "  every call goes through mca",
        "",
        "kubectl's streaming calls:",
        "",
        ...table(["client", ...COMPAT_OPS], [
          [`kubectl ${version}`, ...COMPAT_OPS.map(cell(passed))],
        ]),
        "",
        "A long-running client-go app (it re-opens its watch when it ends):",
        "",
        ...table(["client", ...APP_OPS], [
          [this.clientGo, ...APP_OPS.map(cell(appPassed))],
        ]),
        "",
      ].join("\n");
      await Deno.mkdir(dirname(file), { recursive: true });
      await Deno.writeTextFile(file, text);
    },
  };
}

type Compat = ReturnType<typeof compatReport>;
const STREAMS: Target = { pod: "streams", container: "ws" };
const at = (container: string): Target => ({ pod: "streams", container });
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  }
  return out;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return Array.from(new Uint8Array(d)).map((b) =>
    b.toString(16).padStart(2, "0")
  )
    .join("");
}

/** How many calls mca (current instance) logged for `subresource`. */
async function countCalls(node: Node, pod: string, subresource: string) {
  return (await mcaLog(node, pod)).filter((c) =>
    c.msg === "api call" && c.subresource === subresource
  ).length;
}

/** kubectl attach -i from ws (WebSocket) and spdy (SPDY) containers. */
async function attachStep(node: Node, compat: Compat) {
  const before = await countCalls(node, "streams", "attach");
  for (const from of ["ws", "spdy"]) {
    const input = new TextEncoder().encode(
      `attach via ${from}: ${crypto.randomUUID()}\n`.repeat(50),
    );
    const r = await execIn(node, at(from), [
      "/kubectl",
      "attach",
      "-i",
      "streams",
      "-c",
      `attach-${from}`,
    ], { stdin: input });
    assert.equal(r.code, 0, `${from}: ${r.stderr}`);
    assert.equal(text(r.stdout), text(input), `${from}: ${r.stderr}`);
    const bad = await execIn(node, at(from), [
      "/kubectl",
      "attach",
      "-i",
      "streams",
      "-c",
      "no-such-container",
    ], { stdin: input });
    assert.equal(bad.code, 1, `${from}: ${bad.code} ${bad.stderr}`);
    assert.match(bad.stderr, /no-such-container/);
    compat.pass(from === "ws" ? "attach -i (WS)" : "attach -i (SPDY)");
    console.log(`attach -i via ${from}: ${r.ms} ms`);
  }
  await waitForCalls(node, "streams", (c) => c.subresource === "attach", {
    count: before + 2,
  });
}

/** kubectl port-forward inside ws, WebSocket tunnel then SPDY. */
async function portForwardStep(node: Node, compat: Compat) {
  const before = await countCalls(node, "streams", "portforward");
  const payload = randomBytes(256 * 1024);
  for (const [from, port] of [["ws", "18080"], ["spdy", "18081"]]) {
    // /tool pf starts the port-forward, sends stdin through it to the echo
    // server on 8080 once it listens, prints what comes back, stops it.
    const r = await execIn(node, at(from), [
      "/tool",
      "pf",
      port,
      "/kubectl",
      "port-forward",
      "pod/streams",
      `${port}:8080`,
    ], { stdin: payload });
    assert.equal(r.code, 0, `${from}: ${r.stderr}`);
    assert.equal(r.stdout.length, payload.length, r.stderr);
    assert.equal(await sha256(r.stdout), await sha256(payload));
    compat.pass(from === "ws" ? "port-forward (WS)" : "port-forward (SPDY)");
    console.log(`port-forward via ${from}: 256 KiB echoed, ${r.ms} ms`);
  }
  await waitForCalls(node, "streams", (c) => c.subresource === "portforward", {
    count: before + 2,
  });
}

/**
 * kubectl logs -f inside ws: lines of the ticker arrive while it writes
 * them and the follow ends when it exits; a follow the client stops ends.
 */
async function logsStep(node: Node, compat: Compat) {
  const before = await countCalls(node, "streams", "log");
  const follow = streamLines(node, STREAMS, [
    "/kubectl",
    "logs",
    "-f",
    "streams",
    "-c",
    "ticker",
  ]);
  try {
    const poke = await execIn(node, at("echo"), ["/tool", "poke", "9090"]);
    assert.equal(poke.code, 0, poke.stderr);
    const end = await Promise.race([
      follow.done,
      new Promise<null>((r) => setTimeout(() => r(null), 30_000)),
    ]);
    assert.ok(end, `logs -f did not end after the ticker exited`);
    assert.equal(end.code, 0, end.stderr);
  } finally {
    follow.kill();
  }
  const ticks = follow.lines.map((l) => ({
    ...l,
    m: /^tick (\d+) (\d+)$/.exec(l.text),
  })).filter((l) => l.m);
  assert.deepEqual(
    ticks.map((l) => Number(l.m![1])),
    Array.from({ length: 15 }, (_, i) => i + 1),
    follow.lines.map((l) => l.text).join("\n"),
  );
  const written = ticks.map((l) => Number(l.m![2]));
  const lags = ticks.map((l, i) => l.at - written[i]);
  // Streamed, not buffered: the first line arrived before the last was
  // written (2.8 s later), and no line waited long.
  assert.ok(ticks[0].at < written[14], `first line at ${ticks[0].at}`);
  assert.ok(Math.max(...lags) < 2_000, `lags ${lags.join(",")} ms`);
  console.log(`logs -f: max line lag ${Math.max(...lags)} ms`);
  // The client stops: /tool run-for SIGINTs kubectl after 1.5 s; exit 0
  // means the follow was still open then (echo never exits).
  const stopped = await execIn(node, STREAMS, [
    "/tool",
    "run-for",
    "1500",
    "/kubectl",
    "logs",
    "-f",
    "streams",
    "-c",
    "echo",
  ]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.match(text(stopped.stdout), /echo listening on 8080/);
  // Both follows ended inside mca too: it logs a stream when it closes.
  await waitForCalls(node, "streams", (c) => c.subresource === "log", {
    count: before + 2,
  });
  compat.pass("logs -f");
}

/** kubectl cp inside ws, to and from the echo container: 1 MiB each way. */
async function cpStep(node: Node, compat: Compat) {
  const before = await countCalls(node, "streams", "exec");
  const up = randomBytes(1024 * 1024);
  const down = randomBytes(1024 * 1024);
  const ok = async (r: Promise<ExecResult>) => {
    const done = await r;
    assert.equal(done.code, 0, done.stderr);
    return done;
  };
  await ok(execIn(node, STREAMS, ["/tool", "write", "/tmp/up.bin"], {
    stdin: up,
  }));
  const cpUp = await ok(execIn(node, STREAMS, [
    "/kubectl",
    "cp",
    "/tmp/up.bin",
    "streams:/tmp/up.bin",
    "-c",
    "echo",
  ]));
  const landed = await ok(
    execIn(node, at("echo"), ["/tool", "read", "/tmp/up.bin"]),
  );
  assert.equal(await sha256(landed.stdout), await sha256(up));
  compat.pass("cp (to Pod)");
  await ok(execIn(node, at("echo"), ["/tool", "write", "/tmp/down.bin"], {
    stdin: down,
  }));
  const cpDown = await ok(execIn(node, STREAMS, [
    "/kubectl",
    "cp",
    "streams:/tmp/down.bin",
    "/tmp/down.bin",
    "-c",
    "echo",
  ]));
  const back = await ok(
    execIn(node, STREAMS, ["/tool", "read", "/tmp/down.bin"]),
  );
  assert.equal(await sha256(back.stdout), await sha256(down));
  compat.pass("cp (from Pod)");
  console.log(
    `kubectl cp 1 MiB: to Pod ${cpUp.ms} ms, from Pod ${cpDown.ms} ms`,
  );
  // Each kubectl cp is one exec (tar) through mca.
  await waitForCalls(node, "streams", (c) => c.subresource === "exec", {
    count: before + 2,
  });
}

/** A Pod spec through the injector (the CLI's own function), as JSON. */
function injectedPod(
  node: Node,
  metadata: Record<string, unknown>,
  spec: JsonObject,
): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace: node.cluster.namespace, ...metadata },
    spec: injectPodSpec({
      nodeName: NODE_NAME,
      serviceAccountName: node.cluster.serviceAccount,
      ...spec,
    }, { image: MCA_IMAGE, imagePullPolicy: "Never" }),
  });
}

/** Holds the `ending` Pod's object after deletion so its status can be read. */
const HOLD = "mca.io/e2e-hold";

/**
 * The Pod of the deletion step, applied early so it is running by then:
 * `caller` makes one API call after its SIGTERM (an app's last call while
 * it shuts down), `idle` just stops.
 */
function endingPod(node: Node): string {
  return injectedPod(node, { name: "ending", finalizers: [HOLD] }, {
    terminationGracePeriodSeconds: 10,
    containers: [
      toolApp("caller", [
        "on-term",
        "/kubectl",
        "get",
        "configmaps",
        "-o",
        "name",
      ]),
      toolApp("idle", ["sleep"]),
    ],
  });
}

/** Deletes `ending`: apps stop first, mca last and serving until then. */
async function deletionStep(node: Node) {
  const ns = node.cluster.namespace;
  await node.cluster.kubectl([
    "wait",
    "pod/ending",
    "-n",
    ns,
    "--for=condition=Ready",
    "--timeout=60s",
  ]);
  // Follow both logs first: the kubelet may remove the containers (and
  // their logs) soon after they stop.
  const logs = ["caller", "mca"].map((c) => followLog(node, "ending", c));
  await node.cluster.kubectl([
    "delete",
    "pod",
    "ending",
    "-n",
    ns,
    "--wait=false",
  ]);
  let pod: any = {};
  const all = () => [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ];
  await until("every container of ending terminated", 60_000, async () => {
    pod = await podJson(node, "ending");
    return all().length === 3 && all().every((c) => c.state?.terminated);
  });
  const why = JSON.stringify(pod.status);
  const ended = (name: string) => {
    const c = all().find((s) => s.name === name);
    return {
      code: c.state.terminated.exitCode,
      at: Date.parse(c.state.terminated.finishedAt),
    };
  };
  const [mca, caller, idle] = ["mca", "caller", "idle"].map(ended);
  assert.equal(caller.code, 0, `caller's last call failed: ${why}`);
  assert.equal(idle.code, 0, why);
  // finishedAt has one-second resolution; mca's own log has milliseconds.
  assert.ok(caller.at <= mca.at && idle.at <= mca.at, why);
  const [callerLog, mcaText] = await Promise.race([
    Promise.all(logs),
    new Promise<never>((_, no) =>
      setTimeout(() => no(new Error("logs -f of ending did not end")), 30_000)
    ),
  ]);
  const exited = /call exited 0 at (\d+)/.exec(callerLog);
  const termAt = /SIGTERM at (\d+)/.exec(callerLog);
  assert.ok(exited && termAt, callerLog);
  const entries = parseLog(mcaText);
  const stopped = entries.find((e) => e.msg === "stopped");
  assert.ok(stopped, `mca logged no "stopped": ${JSON.stringify(entries)}`);
  const stoppedAt = Date.parse(String(stopped.time));
  assert.ok(
    stoppedAt > Number(exited[1]),
    `mca stopped at ${stoppedAt}, before the app's last call ended at ${
      exited[1]
    }`,
  );
  const calls = entries.filter((e) => e.msg === "api call");
  const last = calls.find((c) =>
    c.resource === "configmaps" && c.verb === "list" &&
    Date.parse(String(c.time)) >= Number(termAt[1])
  );
  assert.equal(
    last?.status,
    200,
    `the call after SIGTERM: ${JSON.stringify(calls)}`,
  );
  const failed = calls.filter((c) => c.level !== "info");
  assert.deepEqual(failed, [], "mca logged failed calls");
  console.log(
    `deletion: app's last call ${
      Number(exited[1]) - Number(termAt[1])
    } ms after its SIGTERM, ` +
      `mca stopped ${
        stoppedAt - Number(exited[1])
      } ms after the app's call ended`,
  );
  await node.cluster.kubectl([
    "patch",
    "pod",
    "ending",
    "-n",
    ns,
    "--type=json",
    `-p=[{"op":"remove","path":"/metadata/finalizers"}]`,
  ]);
}

/**
 * What `mca --inject` refuses, built by hand: an injected Pod switched to
 * `shareProcessNamespace: true`. `same-uid` runs as mca's UID (65532, also
 * distroless "nonroot"), `root` as the image's default root.
 */
function sharedPidPod(node: Node): string {
  const pod = JSON.parse(injectedPod(node, { name: "shared-pid" }, {
    terminationGracePeriodSeconds: 2,
    containers: [
      toolApp("same-uid", ["sleep"], {
        securityContext: { runAsUser: 65532, runAsGroup: 65532 },
      }),
      toolApp("root", ["sleep"]),
    ],
  }));
  pod.spec.shareProcessNamespace = true;
  return JSON.stringify(pod);
}

/** FNV-1a 64 as /tool spy prints it: compares tokens without showing them. */
function fnv1a(bytes: Uint8Array): string {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) {
    h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  }
  return h.toString(16).padStart(16, "0");
}

/** The kubelet's copy of a Pod's real token, on this node's disk. */
function realTokenFile(node: Node, podUid: string): string {
  return join(
    node.dir,
    "kubelet/root/pods",
    podUid,
    "volumes/kubernetes.io~projected",
    REAL_SA_VOLUME,
    "token",
  );
}

/**
 * Proves what an app of a shared-PID Pod can read of mca (by hash, never
 * the token itself), then that the injector refuses such a Pod.
 */
async function sharedPidStep(node: Node) {
  await node.cluster.kubectl([
    "wait",
    "pod/shared-pid",
    "-n",
    node.cluster.namespace,
    "--for=condition=Ready",
    "--timeout=60s",
  ]);
  const uid = (await podJson(node, "shared-pid")).metadata.uid;
  const real = fnv1a(await Deno.readFile(realTokenFile(node, uid)));
  const seen: Record<string, string> = {};
  for (const container of ["same-uid", "root"]) {
    const r = await execIn(node, { pod: "shared-pid", container }, [
      "/tool",
      "spy",
      `${SA_PATH}/token`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    // mca is `deno` (the image's launcher execs it); the apps are `tool`.
    const line = text(r.stdout).split("\n").find((l) => / comm=deno /.test(l));
    assert.ok(
      line,
      `${container} does not see mca's process:\n${text(r.stdout)}`,
    );
    seen[container] = line.replaceAll(real, "<the real token>");
  }
  console.log("shareProcessNamespace, mca's process as each app sees it:");
  for (const [c, line] of Object.entries(seen)) console.log(`  ${c}: ${line}`);
  // The finding that makes inject refuse these Pods: an app with mca's UID
  // reads the real token through /proc/<mca pid>/root.
  assert.match(
    seen["same-uid"],
    /root=read len=\d+ fnv=<the real token> jwt=1/,
  );
  assert.match(seen["root"], /root=Permission denied/);
  const refused = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "main.ts", "--inject"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = refused.stdin.getWriter();
  await w.write(new TextEncoder().encode(sharedPidPod(node)));
  await w.close();
  const out = await refused.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1, stderr);
  assert.equal(out.stdout.length, 0);
  assert.match(stderr, /^mca: .*shareProcessNamespace: true.*\n$/);
}

/**
 * The rotation Pod: its real token is asked for 600 s (the API's minimum),
 * so the kubelet replaces it once 80 % of that has passed (~480 s). It
 * starts beside the first injected Pod and is checked last, so the wait
 * overlaps the other steps.
 */
function rotatingPod(node: Node): string {
  const pod = JSON.parse(injectedPod(node, { name: "rotating" }, {
    terminationGracePeriodSeconds: 2,
    containers: [app("rot", ["get", "configmaps", "--watch", "-o", "name"])],
  }));
  const volume = (pod.spec.volumes as any[]).find((v) =>
    v.name === REAL_SA_VOLUME
  );
  const source = (volume.projected.sources as any[]).find((s) =>
    s.serviceAccountToken
  );
  source.serviceAccountToken.expirationSeconds = 600;
  return JSON.stringify(pod);
}

/** The claims of the kubelet's token on disk (read here, never printed). */
async function tokenClaims(node: Node, podUid: string) {
  const jwt = await Deno.readTextFile(realTokenFile(node, podUid));
  const part = jwt.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
  const claims = JSON.parse(atob(part + "=".repeat((4 - part.length % 4) % 4)));
  return claims as { jti: string; iat: number; exp: number };
}

/** The credential the apiserver saw for an app's call through mca. */
async function upstreamCredential(node: Node): Promise<string> {
  const r = await execIn(node, { pod: "rotating", container: "rot" }, [
    "/kubectl",
    "auth",
    "whoami",
    "-o",
    "json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const user = JSON.parse(text(r.stdout)).status.userInfo;
  return String(user.extra?.["authentication.kubernetes.io/credential-id"]);
}

interface RotationStart {
  uid: string;
  first: { jti: string; iat: number; exp: number };
}

/** Before rotation: the upstream sees the kubelet's first token. */
async function rotationStart(node: Node): Promise<RotationStart> {
  await node.cluster.kubectl([
    "wait",
    "pod/rotating",
    "-n",
    node.cluster.namespace,
    "--for=condition=Ready",
    "--timeout=60s",
  ]);
  const uid = (await podJson(node, "rotating")).metadata.uid;
  const first = await tokenClaims(node, uid);
  assert.equal(first.exp - first.iat, 600, "the kubelet's token lives 600 s");
  assert.equal(await upstreamCredential(node), `JTI=${first.jti}`);
  return { uid, first };
}

/**
 * After rotation: the kubelet wrote a new token, the next call through mca
 * carries it (the apiserver names its JTI) and no call failed.
 */
async function rotationEnd(node: Node, start: RotationStart) {
  // Due at 80 % of 600 s; the token would expire at 600 s.
  const deadline = (start.first.iat + 600) * 1000;
  let next = start.first;
  await until(
    "the kubelet rotated the token",
    deadline - Date.now(),
    async () => {
      next = await tokenClaims(node, start.uid);
      return next.jti !== start.first.jti;
    },
  );
  console.log(
    `token rotation: new token issued ${
      next.iat - start.first.iat
    } s after the first`,
  );
  // The kubelet renews at 80 % of the lifetime minus a jitter of up to 10 s.
  const after = next.iat - start.first.iat;
  assert.ok(after >= 470 && after < 600, `rotated after ${after} s`);
  // mca re-reads the token when the kubelet swaps ..data: bounded poll.
  await until(
    "the upstream sees the new token",
    30_000,
    async () => (await upstreamCredential(node)) === `JTI=${next.jti}`,
  );
  const calls = (await mcaLog(node, "rotating")).filter((c) =>
    c.msg === "api call"
  );
  const bad = calls.filter((c) => c.level !== "info" || c.status === 401);
  assert.deepEqual(bad, [], "calls failed across the rotation");
  const rot = (await podJson(node, "rotating")).status.containerStatuses[0];
  assert.equal(rot.restartCount, 0, "the watching app kept running");
}

/** Every image the tier imports, built while the node starts (wall time). */
async function buildImages() {
  const bin = await ensureToolchain();
  const [probe, mca, kubectl, clientGo] = await Promise.all([
    buildProbeImage(join(IMAGES_DIR, "probe")),
    buildMcaImage(join(IMAGES_DIR, "mca.tar")),
    buildAppImage(bin.kubectl, join(IMAGES_DIR, "app")),
    buildClientGoImage(join(IMAGES_DIR, "client-go")),
  ]);
  return {
    archives: [probe, mca, kubectl, clientGo.archive],
    clientGo: clientGo.version,
  };
}

Deno.test("node tier: real Pods on a real kubelet", async (t) => {
  const images = buildImages();
  const node = await startNode({ dir: DIR }).catch(async (error) => {
    await images.catch(() => {});
    throw error;
  });
  const compat = compatReport();
  try {
    await t.step("images imported; the later steps' Pods start", async () => {
      const built = await images;
      compat.clientGo = built.clientGo;
      for (const archive of built.archives) await node.importImage(archive);
      // The rotation Pod first: its ~480 s wait sets the tier's length, and
      // every other step runs during it.
      for (
        const pod of [
          rotatingPod(node),
          endingPod(node),
          sharedPidPod(node),
          clientGoPod(node),
        ]
      ) {
        await node.cluster.kubectl(["apply", "-f", "-"], { stdin: pod });
      }
    });

    await t.step("pods reach the Service IP and nothing else", async () => {
      const before = await node.droppedPackets();
      const pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "guard", namespace: node.cluster.namespace },
        spec: {
          nodeName: NODE_NAME,
          restartPolicy: "Never",
          serviceAccountName: node.cluster.serviceAccount,
          containers: [{
            name: "probe",
            image: PROBE_IMAGE,
            imagePullPolicy: "Never",
            // TEST-NET-1 (RFC 5737): a destination that must be dropped.
            args: ["192.0.2.1", "80", SERVICE_IP, "443"],
          }],
        },
      };
      await node.cluster.kubectl(["apply", "-f", "-"], {
        stdin: JSON.stringify(pod),
      });
      const done = await waitTerminal(node, "guard", 90_000);
      assert.equal(done.status.phase, "Succeeded");
      const logs = await logsOf(node, "guard", "probe");
      assert.ok(logs.includes("192.0.2.1:80 fail"), logs);
      assert.ok(logs.includes(`${SERVICE_IP}:443 ok`), logs);
      const after = await node.droppedPackets();
      assert.ok(after > before, `guard dropped ${after - before} packets`);
    });

    await t.step("an injected Pod: mca first, app calls via mca", async () => {
      const ns = node.cluster.namespace;
      const pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "injected", namespace: ns },
        spec: {
          nodeName: NODE_NAME,
          restartPolicy: "Never",
          serviceAccountName: node.cluster.serviceAccount,
          terminationGracePeriodSeconds: 5,
          containers: [
            app("lister", ["get", "configmaps", "-o", "name"]),
            app("forbidden", ["get", "secrets"]),
          ],
        },
      };
      const injected = injectManifests(JSON.stringify(pod), {
        image: MCA_IMAGE,
        imagePullPolicy: "Never",
      });
      await node.cluster.kubectl(["apply", "-f", "-"], { stdin: injected });
      const done = await waitTerminal(node, "injected", 120_000);
      const statuses = done.status.containerStatuses as any[];
      const mca = (done.status.initContainerStatuses as any[])[0];
      const lister = statuses.find((c) => c.name === "lister");
      const forbidden = statuses.find((c) => c.name === "forbidden");
      const why = JSON.stringify(done.status) + "\nmca: " +
        await logsOf(node, "injected", "mca");
      assert.equal(lister.state.terminated?.exitCode, 0, why);
      assert.ok(
        (await logsOf(node, "injected", "lister")).includes(
          "configmap/kube-root-ca.crt",
        ),
        why,
      );
      assert.equal(forbidden.state.terminated?.exitCode, 1, why);
      assert.match(
        await logsOf(node, "injected", "forbidden"),
        /Forbidden|forbidden/,
      );
      // The kubelet started the apps only after mca's startup probe passed:
      // no app started before the second in which mca logged "ready"
      // (container start times have one-second resolution).
      const mcaLog = await logsOf(node, "injected", "mca");
      const ready = mcaLog.split("\n").map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          return {};
        }
      }).find((e) => e.msg === "ready");
      assert.ok(ready, `mca never logged ready: ${why}`);
      const readySecond = Math.floor(Date.parse(ready.time) / 1000) * 1000;
      for (const c of [lister, forbidden]) {
        assert.ok(
          Date.parse(c.state.terminated.startedAt) >= readySecond,
          `${c.name} started before mca was ready: ${why}`,
        );
      }
      assert.ok(Date.parse(mca.state.terminated?.startedAt) <= readySecond);
      // The apps' calls went through mca, as their own service account.
      assert.match(
        mcaLog,
        /"path":"\/api\/v1\/namespaces\/[^"]+\/configmaps","[^\n]*"status":200/,
      );
      assert.match(mcaLog, /"resource":"secrets"[^\n]*"status":403/);
    });

    await t.step(
      "client-go app in a real Pod: list, create, watch, 403 via mca",
      async () => {
        await firstRound(node);
        for (const op of ["list", "create", "watch", "403"] as const) {
          compat.passApp(op);
        }
      },
    );

    let rotation: RotationStart | undefined;
    await t.step(
      "token rotation, before: upstream sees the first token",
      async () => {
        rotation = await rotationStart(node);
      },
    );

    await t.step(
      "kubectl exec inside an app, through mca (WS and SPDY)",
      async () => {
        const ns = node.cluster.namespace;
        const sa = `system:serviceaccount:${ns}:${node.cluster.serviceAccount}`;
        await node.cluster.kubectl([
          "create",
          "role",
          "streams",
          "-n",
          ns,
          "--verb=create,get",
          "--resource=pods/exec,pods/attach,pods/portforward,pods/log",
        ]);
        await node.cluster.kubectl([
          "create",
          "rolebinding",
          "streams",
          "-n",
          ns,
          "--role=streams",
          `--user=${sa}`,
        ]);
        const watch = ["get", "configmaps", "--watch", "-o", "name"];
        const spdy = app("spdy", watch) as Record<string, unknown>;
        spdy.env = [
          { name: "KUBECTL_REMOTE_COMMAND_WEBSOCKETS", value: "false" },
          { name: "KUBECTL_PORT_FORWARD_WEBSOCKETS", value: "false" },
        ];
        const pod = {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "streams", namespace: ns },
          spec: {
            nodeName: NODE_NAME,
            serviceAccountName: node.cluster.serviceAccount,
            terminationGracePeriodSeconds: 2,
            containers: [app("ws", watch), spdy, ...STREAM_HELPERS],
          },
        };
        await node.cluster.kubectl(["apply", "-f", "-"], {
          stdin: injectManifests(JSON.stringify(pod), {
            image: MCA_IMAGE,
            imagePullPolicy: "Never",
          }),
        });
        await node.cluster.kubectl([
          "wait",
          "pod/streams",
          "-n",
          ns,
          "--for=condition=Ready",
          "--timeout=90s",
        ]);
        for (const from of ["ws", "spdy"]) {
          // Outer exec: admin, straight to the apiserver. Inner: the app's
          // own kubectl, in-cluster config, so via mca to the kubelet.
          const inner = (cmd: string[]) =>
            node.cluster.kubectl([
              "exec",
              "streams",
              "-n",
              ns,
              "-c",
              from,
              "--",
              "/kubectl",
              "exec",
              "streams",
              "-c",
              "ws",
              "--",
              ...cmd,
            ], { check: false });
          const ok = await inner(["/kubectl", "version", "--client"]);
          assert.equal(ok.code, 0, `${from}: ${ok.stderr}`);
          assert.match(ok.stdout, /Client Version: v1\.34\.4/);
          const bad = await inner(["/kubectl", "no-such-command"]);
          assert.equal(
            bad.code,
            1,
            `${from}: exit code ${bad.code} ${bad.stderr}`,
          );
          compat.pass(`exec (${from === "ws" ? "WS" : "SPDY"})`);
        }
        // mca logs an upgrade when both sides have closed: poll (bounded).
        const logDeadline = Date.now() + 30_000;
        let mcaLog = await logsOf(node, "streams", "mca");
        while (
          !/"subresource":"exec"/.test(mcaLog) && Date.now() < logDeadline
        ) {
          await new Promise((r) => setTimeout(r, 500));
          mcaLog = await logsOf(node, "streams", "mca");
        }
        assert.match(mcaLog, /"subresource":"exec"/);
      },
    );

    await t.step(
      "kubectl attach -i inside an app, through mca",
      () => attachStep(node, compat),
    );
    await t.step(
      "kubectl port-forward inside an app (WS and SPDY)",
      () => portForwardStep(node, compat),
    );
    await t.step(
      "kubectl logs -f inside an app: streamed, ends",
      () => logsStep(node, compat),
    );
    await t.step(
      "kubectl cp inside an app, both ways, exact bytes",
      () => cpStep(node, compat),
    );

    await t.step(
      "mca SIGKILLed: the kubelet restarts it, calls go on",
      async () => {
        const ns = node.cluster.namespace;
        const get = () => podJson(node, "streams");
        await killMca(node, "streams");
        // The app here is a plain `kubectl --watch`: its watch is cut when
        // mca dies, it exits and the kubelet restarts it (ADR 0015). Wait
        // until it runs again (bounded) before exec'ing into it.
        const running = () =>
          get().then((pod) =>
            (pod.status.containerStatuses as any[]).some((c) =>
              c.name === "ws" && c.state?.running !== undefined
            )
          );
        const execDeadline = Date.now() + 90_000;
        let r;
        while (true) {
          while (!(await running()) && Date.now() < execDeadline) {
            await new Promise((r) => setTimeout(r, 300));
          }
          r = await node.cluster.kubectl([
            "exec",
            "streams",
            "-n",
            ns,
            "-c",
            "ws",
            "--",
            "/kubectl",
            "get",
            "configmaps",
            "-o",
            "name",
          ], { check: false });
          if (r.code === 0 || Date.now() > execDeadline) break;
          if (!/container not found|not running/.test(r.stderr)) break;
        }
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /configmap\/kube-root-ca.crt/);
        const apps = (await get()).status.containerStatuses as any[];
        console.log(
          "app restartCounts after mca restart:",
          apps.map((c) => `${c.name}=${c.restartCount}`).join(" "),
        );
      },
    );
    await t.step(
      "client-go app: mca SIGKILLed, the app keeps running, watch re-opened",
      async () => {
        await survivesMcaKill(node);
        compat.passApp("mca SIGKILLed: app restartCount 0");
        compat.passApp("watch re-opened, calls go on");
      },
    );
    await t.step("helm chart: the webhook Pod runs on the node", async () => {
      await installChart(node, join(DIR, "helm"));
      const pod = await webhookRunning(node);
      console.log(`webhook Pod ${pod.metadata.name} at ${pod.status.podIP}`);
    });
    await t.step(
      "labelled namespace: a plain Pod injected by the webhook Pod",
      async () => {
        await labelledNamespace(node);
        await plainPodInjected(node);
      },
    );
    await t.step(
      "webhook scaled to 0: the labelled namespace's Pods are refused",
      async () => {
        const refusal = await refusedWithoutWebhook(node);
        console.log(`refused: ${refusal.trim().split("\n")[0]}`);
      },
    );
    await t.step(
      "Pod deletion: apps stop first, mca last",
      () => deletionStep(node),
    );
    await t.step(
      "shareProcessNamespace: the token is exposed; refused",
      () => sharedPidStep(node),
    );
    await t.step("token rotation, after ~480 s: the new token is used", () => {
      assert.ok(rotation, "the rotation Pod never started");
      return rotationEnd(node, rotation);
    });
  } finally {
    await compat.write(COMPAT_FILE, "v1.34.4").catch(() => {});
    await node.stop();
  }
});
