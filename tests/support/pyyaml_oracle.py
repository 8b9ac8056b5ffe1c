"""Independent YAML 1.1 reader for the inject fuzz test (PyYAML safe_load).

stdin: one JSON object per line {"input": str, "output": str, "json": bool}.
stdout: one line per case, "ok" or a one-line reason. The comparison is on
meaning: both streams are read (the input with json.loads when it is JSON),
empty documents dropped, and only the documented changes of mca --inject are
masked inside each Pod spec.
"""
import datetime
import json
import math
import sys

import yaml

# libyaml's reader when the wheel has it (same YAML 1.1 resolver, faster).
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

POD_SPEC_PATHS = {
    "Pod": ["spec"], "PodTemplate": ["template", "spec"],
    "ReplicationController": ["spec", "template", "spec"],
    "Deployment": ["spec", "template", "spec"],
    "StatefulSet": ["spec", "template", "spec"],
    "DaemonSet": ["spec", "template", "spec"],
    "ReplicaSet": ["spec", "template", "spec"],
    "Job": ["spec", "template", "spec"],
    "CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
}
SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
OUR_VOLUMES = {"kube-api-access-sa", "kube-api-access-mca-sa", "mca-state"}
OUR_ENV = {"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"}


def canon(value):
    """A comparable form that keeps YAML types apart (True is not 1)."""
    if value is None:
        return ("z",)
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("n", value)
    if isinstance(value, float):
        if math.isnan(value):
            return ("f", "nan")
        if math.isfinite(value) and value.is_integer():
            return ("n", int(value))
        return ("f", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, bytes):
        return ("y", value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return ("t", value.isoformat())
    if isinstance(value, (list, tuple)):
        return ("l", tuple(canon(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return ("e", tuple(sorted(repr(canon(v)) for v in value)))
    if isinstance(value, dict):
        return ("d", tuple(sorted((repr(canon(k)), canon(v)) for k, v in value.items())))
    raise TypeError("unexpected %r" % type(value))


def mask_container(c):
    c = dict(c)
    env = [e for e in c.get("env") or [] if not (isinstance(e, dict) and e.get("name") in OUR_ENV)]
    mounts = [m for m in c.get("volumeMounts") or []
              if not (isinstance(m, dict) and (str(m.get("mountPath", "")).rstrip("/") == SA_PATH
                                               or m.get("name") in OUR_VOLUMES))]
    c.pop("env", None)
    c.pop("volumeMounts", None)
    if env:
        c["env"] = env
    if mounts:
        c["volumeMounts"] = mounts
    return c


def mask_spec(spec):
    spec = dict(spec)
    spec.pop("automountServiceAccountToken", None)
    for key in ("containers", "initContainers"):
        items = [mask_container(c) for c in spec.get(key) or [] if c.get("name") != "mca"]
        spec.pop(key, None)
        if items:
            spec[key] = items
    vols = [v for v in spec.get("volumes") or [] if v.get("name") not in OUR_VOLUMES]
    spec.pop("volumes", None)
    if vols:
        spec["volumes"] = vols
    return spec


def mask(obj):
    if not isinstance(obj, dict):
        return obj
    kind = obj.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list):
        obj = dict(obj)
        obj["items"] = [mask(i) for i in obj["items"]]
        return obj
    path = POD_SPEC_PATHS.get(kind)
    if not path:
        return obj
    obj = json_copy(obj)
    node = obj
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = mask_spec(node[path[-1]])
    return obj


def json_copy(value):
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


def load(text, is_json):
    if is_json:
        return [json.loads(text)]
    return [d for d in yaml.load_all(text, Loader=LOADER) if d is not None]


def check(case):
    before = [mask(d) for d in load(case["input"], case["json"])]
    after_docs = load(case["output"], False)
    after = [mask(d) for d in after_docs]
    if len(before) != len(after):
        return "document count %d -> %d" % (len(before), len(after))
    for i, (a, b) in enumerate(zip(before, after)):
        if canon(a) != canon(b):
            return "document %d meaning changed: %r -> %r" % (i + 1, a, b)
    return "ok"


def main():
    sys.setrecursionlimit(20000)
    for line in sys.stdin:
        try:
            result = check(json.loads(line))
        except Exception as error:  # one line per case, whatever went wrong
            result = "oracle error: %s: %s" % (type(error).__name__, error)
        print(result.replace("\n", " ")[:2000], flush=True)


main()
