/**
 * The node tier's second SDK: a long-running client-go app
 * (`tests/e2e/sdk/client-go/node/main.go`, built static by the SDK matrix's
 * own `build.sh node` from the same module and pinned versions) in a real
 * Pod made by `mca --inject`. Its only configuration is in-cluster, so its
 * calls go through mca. The test drives it through the API: each round is a
 * value of the `ping` ConfigMap, which the app sees on its watch and
 * answers with a list, a create (`pong-<round>`) and a refused list of
 * Secrets, one JSON line each on its stdout.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { injectManifests } from "../../lib/inject/manifest.ts";
import { MCA_IMAGE } from "../../deploy/image/build.ts";
import { buildSdk } from "./mca_pod.ts";
import { type Node, NODE_NAME } from "./node.ts";
import {
  killMca,
  parseLog,
  podJson,
  until,
  waitForCalls,
} from "./node_apps.ts";
import { buildOciArchive } from "./oci_image.ts";

export const CLIENT_GO_IMAGE = "localhost/client-go:mca";
/** The Pod and its app container. */
export const CLIENT_GO_POD = "client-go";
const CONTAINER = "app";
const USER_AGENT = "mca-e2e-node-client-go";

/** One line the app printed. */
export interface AppLine {
  op: string;
  round: string;
  ok: boolean;
  detail: string;
  t: number;
}

/**
 * Builds the app (warm: a stamp check) and its image, one static binary at
 * `/client-go`; returns the archive and the client-go version.
 */
export async function buildClientGoImage(
  dir: string,
): Promise<{ archive: string; version: string }> {
  const built = await buildSdk("client-go", { args: ["node"] });
  const rootfs = join(dir, "rootfs");
  await Deno.remove(rootfs, { recursive: true }).catch(() => {});
  await Deno.mkdir(rootfs, { recursive: true });
  await Deno.copyFile(built.command[0], join(rootfs, "client-go"));
  const archive = await buildOciArchive({
    name: CLIENT_GO_IMAGE,
    rootfs,
    out: join(dir, "client-go.tar"),
    entrypoint: ["/client-go"],
  });
  return { archive, version: built.version };
}

/** The app's Pod, through the injector (the CLI's own function). */
export function clientGoPod(node: Node): string {
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: CLIENT_GO_POD, namespace: node.cluster.namespace },
    spec: {
      nodeName: NODE_NAME,
      serviceAccountName: node.cluster.serviceAccount,
      terminationGracePeriodSeconds: 2,
      containers: [{
        name: CONTAINER,
        image: CLIENT_GO_IMAGE,
        imagePullPolicy: "Never",
      }],
    },
  };
  return injectManifests(JSON.stringify(pod), {
    image: MCA_IMAGE,
    imagePullPolicy: "Never",
  });
}

/** Everything the app printed so far (its current container). */
export async function appLines(node: Node): Promise<AppLine[]> {
  const r = await node.cluster.kubectl([
    "logs",
    CLIENT_GO_POD,
    "-c",
    CONTAINER,
    "-n",
    node.cluster.namespace,
  ], { check: false });
  return parseLog(r.stdout) as unknown as AppLine[];
}

const ROUND_OPS = ["list", "create", "forbidden"] as const;

/**
 * Sets `ping` to `round` (admin, straight to the apiserver) and waits
 * (30 s bound) for the app's three answers; asserts each passed, and checks
 * the created ConfigMap with the admin's kubectl (not the app's word).
 */
export async function pingRound(
  node: Node,
  round: string,
): Promise<AppLine[]> {
  const ns = node.cluster.namespace;
  await node.cluster.kubectl(["apply", "-f", "-"], {
    stdin: JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "ping", namespace: ns, labels: { "mca-e2e": "ping" } },
      data: { round },
    }),
  });
  let answers: AppLine[] = [];
  await until(
    `the client-go app to answer round ${round}`,
    30_000,
    async () => {
      answers = (await appLines(node)).filter((l) => l.round === round);
      return ROUND_OPS.every((op) => answers.some((l) => l.op === op));
    },
  ).catch(async (error) => {
    throw new Error(
      `${error.message}; the app printed:\n${
        (await appLines(node)).map((l) => JSON.stringify(l)).join("\n")
      }`,
    );
  });
  for (const op of ROUND_OPS) {
    const line = answers.find((l) => l.op === op)!;
    assert.ok(line.ok, `round ${round}, ${op}: ${line.detail}`);
  }
  // Refused as its own ServiceAccount: the apiserver names the user.
  const refused = answers.find((l) => l.op === "forbidden")!.detail;
  assert.match(refused, /HTTP 403/);
  assert.ok(refused.includes(node.cluster.serviceAccountUser), refused);
  const pong = await node.cluster.kubectl([
    "get",
    "configmap",
    `pong-${round}`,
    "-n",
    ns,
    "-o",
    "jsonpath={.data.round}",
  ]);
  assert.equal(pong.stdout, round);
  return answers;
}

/**
 * The round's create (201) and refused list (403) in the log of the
 * current mca instance, with the app's user agent: they went through mca.
 */
export async function assertCallsViaMca(node: Node): Promise<void> {
  const calls = await waitForCalls(
    node,
    CLIENT_GO_POD,
    (c) =>
      c.userAgent === USER_AGENT &&
      ((c.resource === "configmaps" && c.method === "POST") ||
        c.resource === "secrets"),
    { count: 2 },
  );
  assert.ok(
    calls.some((c) => c.method === "POST" && c.status === 201),
    `no create through mca: ${JSON.stringify(calls)}`,
  );
  assert.ok(
    calls.some((c) => c.resource === "secrets" && c.status === 403),
    `no refused list through mca: ${JSON.stringify(calls)}`,
  );
}

/** The app has a watch open; round 1 arrives on it and is answered. */
export async function firstRound(node: Node): Promise<void> {
  await until(
    "the client-go app to open its watch",
    90_000,
    async () =>
      (await appLines(node)).some((l) => l.op === "watch-open" && l.ok),
  ).catch(async (error) => {
    const pod = await podJson(node, CLIENT_GO_POD).catch(() => ({}));
    throw new Error(`${error.message}: ${JSON.stringify(pod.status)}`);
  });
  await pingRound(node, "1");
  await assertCallsViaMca(node);
  assertOnWatch(await appLines(node), "1");
}

function assertOnWatch(lines: AppLine[], round: string) {
  assert.ok(
    lines.some((l) => l.op === "event" && l.round === round),
    `round ${round} never arrived on the watch: ${JSON.stringify(lines)}`,
  );
}

/**
 * mca SIGKILLed under the running app: the kubelet restarts mca only, the
 * app's watch ends and it opens a new one (through the new mca) by itself;
 * a later round arrives on it and is answered, the app's restartCount is 0.
 */
export async function survivesMcaKill(node: Node): Promise<void> {
  const before = (await appLines(node)).length;
  await killMca(node, CLIENT_GO_POD);
  await until("the app to re-open its watch", 60_000, async () => {
    const after = (await appLines(node)).slice(before);
    const closed = after.findIndex((l) => l.op === "watch-closed");
    return closed >= 0 &&
      after.slice(closed).some((l) => l.op === "watch-open" && l.ok);
  });
  await pingRound(node, "2");
  await assertCallsViaMca(node);
  assertOnWatch((await appLines(node)).slice(before), "2");
  const app = ((await podJson(node, CLIENT_GO_POD)).status
    .containerStatuses as { name: string; restartCount: number }[])
    .find((c) => c.name === CONTAINER)!;
  assert.equal(app.restartCount, 0, "the client-go app was restarted");
}
