/**
 * V8 heap snapshots of another process, taken over its inspector (`deno run
 * --inspect=127.0.0.1:PORT`), summarised by constructor and by who retains
 * what: the tool behind `bench/watch_memory.ts`, which asks where the bytes
 * of one watch go. The snapshot format is V8's (`snapshot.meta` names the
 * fields of the flat `nodes` and `edges` arrays).
 *
 * @module
 */

/** A V8 `.heapsnapshot`, parsed. */
export interface HeapSnapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Count and self size of one class of heap objects. */
export interface ClassTotal {
  count: number;
  bytes: number;
}

/** A snapshot reduced to what diffs need. */
export interface HeapSummary {
  totalBytes: number;
  /** `type:name` (object constructor, closure name, or just the type). */
  byClass: Map<string, ClassTotal>;
  /** For each class: `retainer class .edge` → bytes retained that way. */
  retainers: Map<string, Map<string, number>>;
}

/** The key a node is grouped under: its constructor for objects. */
function classKey(type: string, name: string): string {
  if (type === "object" || type === "closure" || type === "native") {
    return `${type}:${name.length > 60 ? name.slice(0, 60) + "…" : name}`;
  }
  return type;
}

/** Sums a snapshot by class, and by the class and edge retaining each node. */
export function summarizeHeap(s: HeapSnapshot): HeapSummary {
  const nf = s.snapshot.meta.node_fields;
  const ef = s.snapshot.meta.edge_fields;
  const nodeTypes = s.snapshot.meta.node_types[0];
  const edgeTypes = s.snapshot.meta.edge_types[0];
  const [nType, nName, nSize, nEdges] = [
    "type",
    "name",
    "self_size",
    "edge_count",
  ]
    .map((f) => nf.indexOf(f));
  const [eType, eName, eTo] = ["type", "name_or_index", "to_node"].map((f) =>
    ef.indexOf(f)
  );
  const stride = nf.length;
  const count = s.nodes.length / stride;
  const keys: string[] = new Array(count);
  const byClass = new Map<string, ClassTotal>();
  let totalBytes = 0;
  for (let i = 0; i < count; i++) {
    const at = i * stride;
    const key = classKey(
      nodeTypes[s.nodes[at + nType]],
      s.strings[s.nodes[at + nName]],
    );
    keys[i] = key;
    const size = s.nodes[at + nSize];
    totalBytes += size;
    const t = byClass.get(key) ?? { count: 0, bytes: 0 };
    t.count++;
    t.bytes += size;
    byClass.set(key, t);
  }
  // First strong retainer of each node (weak edges say nothing of why it lives).
  const retainedBy = new Int32Array(count).fill(-1);
  const retainedVia: string[] = new Array(count);
  let edge = 0;
  for (let i = 0; i < count; i++) {
    const edges = s.nodes[i * stride + nEdges];
    for (let k = 0; k < edges; k++, edge += ef.length) {
      const type = edgeTypes[s.edges[edge + eType]];
      if (type === "weak" || type === "shortcut") continue;
      const to = s.edges[edge + eTo] / stride;
      if (retainedBy[to] >= 0) continue;
      retainedBy[to] = i;
      const name = type === "element" || type === "hidden"
        ? `[${type}]`
        : String(s.strings[s.edges[edge + eName]] ?? s.edges[edge + eName]);
      retainedVia[to] = name;
    }
  }
  const retainers = new Map<string, Map<string, number>>();
  for (let i = 0; i < count; i++) {
    if (retainedBy[i] < 0) continue;
    const how = `${keys[retainedBy[i]]} .${retainedVia[i]}`;
    const m = retainers.get(keys[i]) ?? new Map<string, number>();
    m.set(how, (m.get(how) ?? 0) + s.nodes[i * stride + nSize]);
    retainers.set(keys[i], m);
  }
  return { totalBytes, byClass, retainers };
}

/** One row of a diff: a class that grew between two snapshots. */
export interface ClassGrowth {
  key: string;
  count: number;
  bytes: number;
  /** The retainers that grew most for this class. */
  via: { how: string; bytes: number }[];
}

/** What grew from `a` to `b`, largest first. */
export function diffHeaps(
  a: HeapSummary,
  b: HeapSummary,
  top = 30,
): ClassGrowth[] {
  const rows: ClassGrowth[] = [];
  for (const [key, t] of b.byClass) {
    const before = a.byClass.get(key) ?? { count: 0, bytes: 0 };
    const bytes = t.bytes - before.bytes;
    if (bytes <= 0) continue;
    const ra = a.retainers.get(key) ?? new Map<string, number>();
    const via = [...(b.retainers.get(key) ?? new Map<string, number>())]
      .map(([how, n]) => ({ how, bytes: n - (ra.get(how) ?? 0) }))
      .filter((v) => v.bytes > 0)
      .sort((x, y) => y.bytes - x.bytes)
      .slice(0, 3);
    rows.push({ key, count: t.count - before.count, bytes, via });
  }
  return rows.sort((x, y) => y.bytes - x.bytes).slice(0, top);
}

/** A connection to a process's inspector (Chrome DevTools Protocol). */
export interface Inspector {
  /** Sends one method; resolves with its result. */
  call(
    method: string,
    params?: Record<string, unknown>,
  ): Promise<Record<string, unknown>>;
  /** Evaluates an expression in the process; resolves with its JSON value. */
  evaluate(expression: string): Promise<unknown>;
  /** Calls `handler` with the params of every `method` event. */
  onEvent(
    method: string,
    handler: (params: Record<string, unknown>) => void,
  ): void;
  /** Takes a heap snapshot (V8 collects garbage first). */
  heapSnapshot(): Promise<HeapSnapshot>;
  close(): void;
}

/** Connects to the inspector websocket that `--inspect` printed. */
export async function connectInspector(wsUrl: string): Promise<Inspector> {
  const ws = new WebSocket(wsUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () =>
      reject(new Error(`inspector at ${wsUrl} refused the connection`));
  });
  let next = 1;
  const pending = new Map<number, (m: Record<string, unknown>) => void>();
  let chunks: string[] = [];
  const handlers = new Map<string, (p: Record<string, unknown>) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(String(e.data));
    if (m.method === "HeapProfiler.addHeapSnapshotChunk") {
      chunks.push(m.params.chunk);
    } else if (m.method && handlers.has(m.method)) {
      handlers.get(m.method)!(m.params);
    } else if (m.id && pending.has(m.id)) {
      pending.get(m.id)!(m);
      pending.delete(m.id);
    }
  };
  async function call(method: string, params: Record<string, unknown> = {}) {
    const id = next++;
    const answer = new Promise<Record<string, unknown>>((r) =>
      pending.set(id, r)
    );
    ws.send(JSON.stringify({ id, method, params }));
    const m = await answer;
    if (m.error) throw new Error(`${method}: ${JSON.stringify(m.error)}`);
    return (m.result ?? {}) as Record<string, unknown>;
  }
  await call("Runtime.enable");
  return {
    call,
    async evaluate(expression) {
      const r = await call("Runtime.evaluate", {
        expression,
        returnByValue: true,
      });
      return (r.result as { value?: unknown }).value;
    },
    onEvent: (method, handler) => handlers.set(method, handler),
    async heapSnapshot() {
      chunks = [];
      await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
      const text = chunks.join("");
      chunks = [];
      return JSON.parse(text) as HeapSnapshot;
    },
    close: () => ws.close(),
  };
}

/** The websocket URL of the inspector listening on `port`. */
export async function inspectorUrl(port: number): Promise<string> {
  for (let i = 0; i < 50; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/json/list`);
      const list = await r.json();
      if (list[0]?.webSocketDebuggerUrl) return list[0].webSocketDebuggerUrl;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no inspector on 127.0.0.1:${port}`);
}
