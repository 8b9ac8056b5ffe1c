/**
 * Node tier: a real kubelet + containerd against the proof tier's
 * kube-apiserver (tests/support/node.ts). First proof: the network guard.
 * A Pod reaches the `kubernetes` Service IP (DNAT to the local apiserver)
 * and nothing else: a connection to a TEST-NET address is dropped by the
 * egress guard before it can leave the machine.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { NODE_NAME, SERVICE_IP, startNode } from "../support/node.ts";
import { buildOciArchive, compileStatic } from "../support/oci_image.ts";

const DIR = "tmp/e2e/node";
const PROBE_IMAGE = "localhost/probe:mca";

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

Deno.test("node tier: pods reach the Service IP and nothing else", async () => {
  const node = await startNode({ dir: DIR });
  try {
    await node.importImage(await buildProbeImage(join(DIR, "images/probe")));
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
    const ns = ["-n", node.cluster.namespace];
    const deadline = Date.now() + 90_000;
    let phase = "";
    while (Date.now() < deadline) {
      phase = (await node.cluster.kubectl([
        "get",
        "pod",
        "guard",
        ...ns,
        "-o",
        "jsonpath={.status.phase}",
      ])).stdout;
      if (phase === "Succeeded" || phase === "Failed") break;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(
      phase,
      "Succeeded",
      `pod guard ended as ${phase || "nothing"}\n${await node.logTails()}`,
    );
    const logs = (await node.cluster.kubectl(["logs", "guard", ...ns])).stdout;
    assert.ok(logs.includes("192.0.2.1:80 fail"), logs);
    assert.ok(logs.includes(`${SERVICE_IP}:443 ok`), logs);
    const after = await node.droppedPackets();
    assert.ok(after > before, `guard dropped ${after - before} packets`);
  } finally {
    await node.stop();
  }
});
