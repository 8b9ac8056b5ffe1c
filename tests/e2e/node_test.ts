// deno-lint-ignore-file no-explicit-any -- Pod status JSON from kubectl
/**
 * Node tier: a real kubelet + containerd against the proof tier's
 * kube-apiserver (tests/support/node.ts). First proof: the network guard.
 * A Pod reaches the `kubernetes` Service IP (DNAT to the local apiserver)
 * and nothing else: a connection to a TEST-NET address is dropped by the
 * egress guard before it can leave the machine.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Node,
  NODE_NAME,
  SERVICE_IP,
  startNode,
} from "../support/node.ts";
import { buildMcaImage, MCA_IMAGE } from "../../deploy/image/build.ts";
import { injectManifests } from "../../lib/inject/manifest.ts";
import { buildOciArchive, compileStatic } from "../support/oci_image.ts";

const DIR = "tmp/e2e/node";
const PROBE_IMAGE = "localhost/probe:mca";
const KUBECTL_IMAGE = "localhost/kubectl:mca";

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

async function buildKubectlImage(node: Node, dir: string): Promise<string> {
  const rootfs = join(dir, "rootfs");
  await Deno.mkdir(join(rootfs, "tmp"), { recursive: true });
  await Deno.chmod(join(rootfs, "tmp"), 0o1777);
  await Deno.copyFile(node.cluster.bin.kubectl, join(rootfs, "kubectl"));
  return await buildOciArchive({
    name: KUBECTL_IMAGE,
    rootfs,
    out: join(dir, "kubectl.tar"),
    entrypoint: ["/kubectl"],
    env: ["HOME=/tmp"],
  });
}

/** Polls the Pod's phase until it is terminal; returns the Pod JSON. */
async function waitTerminal(node: Node, name: string, ms: number) {
  const deadline = Date.now() + ms;
  let pod: Record<string, any> = {};
  while (Date.now() < deadline) {
    const r = await node.cluster.kubectl([
      "get",
      "pod",
      name,
      "-n",
      node.cluster.namespace,
      "-o",
      "json",
    ]);
    pod = JSON.parse(r.stdout);
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

function app(name: string, args: string[]) {
  return { name, image: KUBECTL_IMAGE, imagePullPolicy: "Never", args };
}

Deno.test("node tier: real Pods on a real kubelet", async (t) => {
  const node = await startNode({ dir: DIR });
  try {
    await t.step("pods reach the Service IP and nothing else", async () => {
      await node.importImage(
        await buildProbeImage(join(DIR, "images/probe")),
      );
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
      await node.importImage(await buildMcaImage(join(DIR, "images/mca.tar")));
      await node.importImage(
        await buildKubectlImage(node, join(DIR, "images/kubectl")),
      );
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
        spdy.env = [{
          name: "KUBECTL_REMOTE_COMMAND_WEBSOCKETS",
          value: "false",
        }];
        const pod = {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "streams", namespace: ns },
          spec: {
            nodeName: NODE_NAME,
            serviceAccountName: node.cluster.serviceAccount,
            terminationGracePeriodSeconds: 2,
            containers: [app("ws", watch), spdy],
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
      "mca SIGKILLed: the kubelet restarts it, calls go on",
      async () => {
        const ns = node.cluster.namespace;
        const get = async () =>
          JSON.parse(
            (await node.cluster.kubectl([
              "get",
              "pod",
              "streams",
              "-n",
              ns,
              "-o",
              "json",
            ]))
              .stdout,
          );
        const before = (await get()).status.initContainerStatuses[0];
        const id = String(before.containerID).replace("containerd://", "");
        await node.ctr(["tasks", "kill", "-s", "SIGKILL", id]);
        const deadline = Date.now() + 60_000;
        let mca = before;
        while (Date.now() < deadline) {
          mca = (await get()).status.initContainerStatuses[0];
          if (mca.restartCount > before.restartCount && mca.started) break;
          await new Promise((r) => setTimeout(r, 300));
        }
        assert.ok(
          mca.restartCount > before.restartCount && mca.started,
          `mca not restarted: ${JSON.stringify(mca)}\n${await node.logTails()}`,
        );
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
  } finally {
    await node.stop();
  }
});
