/**
 * The choices of lib/multicluster/protobuf_answer.ts: who gets protobuf, in
 * which format a merged watch writes, and that nothing is written in a
 * format it does not fit (an event read from protobuf never goes out as
 * JSON, a JSON event never into a protobuf stream).
 */

import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import {
  contentTypeOf,
  prefersProtobuf,
  watchFormat,
} from "../../lib/multicluster/protobuf_answer.ts";
import { decodeWatchEvent } from "../../lib/kube/protobuf_watch.ts";
import { goneEvent } from "../../lib/multicluster/watch_merge.ts";
import { oracleBody, oracleEncode } from "../support/k8s_protobuf_oracle.ts";

const PROTOBUF = "application/vnd.kubernetes.protobuf";

function stream(contentType: string) {
  return {
    kind: "open",
    res: { headers: { "content-type": contentType } } as IncomingMessage,
  };
}

function protobufEvent() {
  return decodeWatchEvent(oracleEncode("WatchEvent", {
    type: "ADDED",
    object: { raw: oracleBody("ConfigMap", { metadata: { name: "a" } }) },
  }));
}

Deno.test("protobuf answers: only for an app that names protobuf first, never for a Table", () => {
  assert.equal(prefersProtobuf(`${PROTOBUF},application/json`), true);
  assert.equal(prefersProtobuf(PROTOBUF), true);
  assert.equal(prefersProtobuf(`application/json,${PROTOBUF}`), false);
  assert.equal(prefersProtobuf("application/json"), false);
  assert.equal(prefersProtobuf(undefined), false);
  assert.equal(
    prefersProtobuf(`${PROTOBUF};as=Table;v=v1;g=meta.k8s.io,application/json`),
    false,
  );
});

Deno.test("protobuf answers: a merged watch is protobuf only when every open stream is", () => {
  const accept = `${PROTOBUF},application/json`;
  const pb = `${PROTOBUF};stream=watch`;
  assert.equal(watchFormat(accept, [stream(pb), stream(pb)]).contentType, pb);
  assert.equal(
    watchFormat(accept, [stream(pb), stream("application/json")]).contentType,
    "application/json",
  );
  assert.equal(
    watchFormat(accept, [stream(pb), { kind: "unreachable" }]).contentType,
    pb,
  );
  assert.equal(
    watchFormat("application/json", [stream(pb)]).contentType,
    "application/json",
  );
});

Deno.test("protobuf answers: each format writes only what fits it", () => {
  const pb = watchFormat(`${PROTOBUF}`, [stream(PROTOBUF)]);
  const json = watchFormat("application/json", [stream("application/json")]);
  const event = protobufEvent();
  const framed = pb.encode(event) as Uint8Array;
  assert.ok(framed instanceof Uint8Array);
  assert.equal(new DataView(framed.buffer).getUint32(0), framed.length - 4);
  assert.equal(json.encode(event), undefined, "a stub never goes out as JSON");
  const gone = goneEvent("list again");
  assert.ok(pb.encode(gone) instanceof Uint8Array, "MCA's Status as protobuf");
  assert.equal(json.encode(gone), JSON.stringify(gone) + "\n");
  const plain = { type: "ADDED", object: { kind: "ConfigMap", metadata: {} } };
  assert.equal(
    pb.encode(plain),
    undefined,
    "JSON never into a protobuf stream",
  );
});

Deno.test("protobuf answers: a passed-on error body keeps its format", () => {
  assert.equal(contentTypeOf(oracleBody("Status", { code: 410 })), PROTOBUF);
  assert.equal(
    contentTypeOf(new TextEncoder().encode('{"kind":"Status"}')),
    "application/json",
  );
});
