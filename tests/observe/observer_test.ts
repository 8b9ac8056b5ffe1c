import assert from "node:assert/strict";
import {
  type CallEnd,
  combineObservers,
  type Observer,
} from "../../lib/observe/observer.ts";
import { withOutcomes } from "../../lib/observe/outcomes.ts";
import { parseRequestInfo } from "../../lib/kube/request_info.ts";

const call = {
  id: 1,
  info: parseRequestInfo("GET", "/api/v1/pods"),
  method: "GET",
  startedAt: 0,
  receivedAt: new Date(0),
  upgrade: false,
};
const end = {
  status: 200,
  bytesIn: 0,
  bytesOut: 1,
  durationMs: 1,
  cluster: "local",
  outcomes: [],
};

Deno.test("observer: a consumer that throws does not hide events from the others", () => {
  const seen: string[] = [];
  const broken: Observer = {
    start: () => ({
      end: () => {
        throw new Error("boom");
      },
    }),
  };
  const counting: Observer = {
    start: () => ({
      upstream: () => ({
        headers: { traceparent: "t" },
        response: (r) => void seen.push(`head ${r.status}`),
        failed: () => {},
      }),
      end: (e) => void seen.push(`end ${e.status}`),
      traceId: () => "abc",
    }),
  };
  const both = combineObservers([broken, counting]).start(call);
  const up = both.upstream?.({
    cluster: "local",
    method: "GET",
    target: "/api/v1/pods",
    info: call.info,
  });
  assert.deepEqual(up?.headers, { traceparent: "t" });
  up?.response({ status: 200 });
  both.end(end);
  assert.deepEqual(seen, ["head 200", "end 200"]);
  assert.equal(both.traceId?.(), "abc");
});

Deno.test("observer: no upstream observation when no consumer wants one", () => {
  const plain: Observer = { start: () => ({ end: () => {} }) };
  const both = combineObservers([plain, plain]).start(call);
  assert.equal(
    both.upstream?.({
      cluster: "local",
      method: "GET",
      target: "/",
      info: call.info,
    }),
    undefined,
  );
});

Deno.test("observer: the end event carries how each upstream request fared", () => {
  const ends: CallEnd[] = [];
  const seen: string[] = [];
  const inner: Observer = {
    start: () => ({
      upstream: (u) => ({
        headers: { traceparent: "t" },
        response: (a) => seen.push(`${u.cluster} ${a.status}`),
        failed: (r) => seen.push(`${u.cluster} ${r}`),
      }),
      end: (e) => ends.push(e),
    }),
  };
  const obs = withOutcomes(inner.start(call));
  const start = (cluster: string) => ({
    cluster,
    method: "GET",
    target: "/api/v1/pods",
    info: call.info,
  });
  const east = obs.upstream?.(start("east"));
  const west = obs.upstream?.(start("west"));
  assert.deepEqual(east?.headers, { traceparent: "t" });
  east?.failed("unreachable", "connect ECONNREFUSED");
  west?.response({ status: 200 });
  obs.end(end);
  assert.deepEqual(ends[0].outcomes, [
    { cluster: "east", error: "unreachable" },
    { cluster: "west", status: 200 },
  ]);
  assert.deepEqual(seen, ["east unreachable", "west 200"], "still told");
});

Deno.test("observer: outcomes a path set itself are kept", () => {
  const ends: CallEnd[] = [];
  const obs = withOutcomes({ end: (e) => ends.push(e) });
  obs.upstream?.({ cluster: "x", method: "GET", target: "/", info: call.info })
    ?.response({ status: 500 });
  obs.end({ ...end, outcomes: [{ cluster: "y", status: 201 }] });
  assert.deepEqual(ends[0].outcomes, [{ cluster: "y", status: 201 }]);
});
