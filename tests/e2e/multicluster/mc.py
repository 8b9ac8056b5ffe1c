"""Python (`kubernetes`) side of the multi-cluster real-tier test.

Runs in the app container of a simulated Pod with nothing but
`config.load_incluster_config()` (so every call goes through `mca`) and
prints one JSON line per result, flushed at once:

    mc.py list NS                 {"status", "warning", "rv", "items": [{"name", "cluster"}]}
                                  (refused: {"status", "retryAfter", "message"})
    mc.py pages NS LIMIT          a LIST in pages of LIMIT (following `continue`):
                                  {"pages": [{"rv", "names"}]}
    mc.py create NS SPEC...       one {"name", "cluster"} per SPEC (`name` or `name:k=v,k2=v2`)
    mc.py watch NS                list, then {"ready": true, "rv"}, then one
                                  {"type", "name", "cluster", "rv"} per event
    mc.py load SPEC_JSON          paced calls until stdin closes; one line per call
                                  {"i", "op", "t0", "t1", "ok", "status", "detail"},
                                  then {"done": n}

SPEC_JSON of `load`: {"rate": calls per second, "max": calls at most,
"ops": [{"op": "get" | "list" | "get404", "ns": ..., "name": ...}, ...]}
(the ops are taken in turn). `get` reports data.cluster (or the object's
mca.io/cluster annotation), `list` the names and clusters of the items and
the Warning header; `get404` expects a 404.

urllib3's own retries are switched off: a call that fails at the connection
level must show up as a failure, not be hidden by a silent retry.
"""

import json
import sys
import threading
import time

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

CLUSTER_ANNOTATION = "mca.io/cluster"


def emit(value):
    print(json.dumps(value), flush=True)


def setup():
    config.load_incluster_config()
    cfg = client.Configuration.get_default_copy()
    cfg.retries = False
    client.Configuration.set_default(cfg)
    return client.CoreV1Api()


def cluster_of(obj):
    annotations = obj.metadata.annotations or {}
    return annotations.get(CLUSTER_ANNOTATION)


def header(headers, name):
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def with_info(answer):
    """(data, status, headers) of a `*_with_http_info` answer, whichever
    shape this client version returns (a tuple, or an ApiResponse)."""
    if isinstance(answer, tuple):
        return answer[0], answer[1], answer[2]
    return answer.data, answer.status_code, answer.headers


def do_list(core, ns):
    data, status, headers = with_info(
        core.list_namespaced_config_map_with_http_info(ns))
    return {
        "status": status,
        "warning": header(headers, "Warning"),
        "rv": data.metadata.resource_version,
        "items": [
            {"name": cm.metadata.name, "cluster": cluster_of(cm)}
            for cm in data.items
        ],
    }


def cmd_list(core, ns):
    try:
        emit(do_list(core, ns))
    except ApiException as e:
        emit({
            "status": e.status,
            "retryAfter": header(e.headers or {}, "Retry-After"),
            "message": json.loads(e.body or "{}").get("message"),
        })


def cmd_pages(core, ns, limit):
    pages, token = [], None
    while True:
        page = core.list_namespaced_config_map(ns, limit=limit, _continue=token)
        pages.append({
            "rv": page.metadata.resource_version,
            "names": [cm.metadata.name for cm in page.items],
        })
        token = page.metadata._continue
        if not token or len(pages) > 1000:
            break
    emit({"pages": pages})


def cmd_create(core, ns, specs):
    for spec in specs:
        name, _, labels_text = spec.partition(":")
        labels = dict(kv.split("=", 1) for kv in labels_text.split(",") if kv)
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels=labels or None),
            data={"made-by": "python"},
        )
        cm = core.create_namespaced_config_map(ns, body)
        emit({"name": cm.metadata.name, "cluster": cluster_of(cm)})


def cmd_watch(core, ns):
    listed = core.list_namespaced_config_map(ns)
    rv = listed.metadata.resource_version
    emit({"ready": True, "rv": rv})
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_config_map, ns, resource_version=rv,
        timeout_seconds=120,
    ):
        obj = event["object"]
        if isinstance(obj, dict):  # an ERROR event's Status
            emit({"type": event["type"], "object": obj})
            continue
        emit({
            "type": event["type"],
            "name": obj.metadata.name,
            "cluster": cluster_of(obj),
            "rv": obj.metadata.resource_version,
        })


def one_call(core, op):
    kind = op["op"]
    try:
        if kind == "list":
            listed = do_list(core, op["ns"])
            return True, listed["status"], {
                "items": [f"{i['name']}@{i['cluster']}" for i in listed["items"]],
                "warning": listed["warning"],
            }
        cm, status, _ = with_info(
            core.read_namespaced_config_map_with_http_info(op["name"], op["ns"]))
        if kind == "get404":
            return False, status, "expected 404"
        where = (cm.data or {}).get("cluster") or cluster_of(cm)
        return True, status, where
    except ApiException as e:
        if kind == "get404" and e.status == 404:
            return True, 404, "not found"
        return False, e.status, f"{e.reason}: {(e.body or '')[:200]}"
    except (urllib3.exceptions.HTTPError, OSError) as e:
        return False, 0, f"{type(e).__name__}: {e}"


def cmd_load(core, spec_text):
    spec = json.loads(spec_text)
    period = 1.0 / spec["rate"]
    ops = spec["ops"]
    stop = threading.Event()

    def wait_for_eof():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    start = time.monotonic()
    i = 0
    while not stop.is_set() and i < spec["max"]:
        # Pacing only: the next call is due at start + i * period.
        due = start + i * period
        now = time.monotonic()
        if due > now:
            stop.wait(due - now)
            if stop.is_set():
                break
        op = ops[i % len(ops)]
        t0 = time.time()
        ok, status, detail = one_call(core, op)
        emit({
            "i": i, "op": op["op"], "ns": op["ns"], "name": op.get("name"),
            "t0": t0, "t1": time.time(),
            "ok": ok, "status": status, "detail": detail,
        })
        i += 1
    emit({"done": i})


def main(argv):
    core = setup()
    cmd = argv[1]
    if cmd == "list":
        cmd_list(core, argv[2])
    elif cmd == "pages":
        cmd_pages(core, argv[2], int(argv[3]))
    elif cmd == "create":
        cmd_create(core, argv[2], argv[3:])
    elif cmd == "watch":
        cmd_watch(core, argv[2])
    elif cmd == "load":
        cmd_load(core, argv[2])
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
