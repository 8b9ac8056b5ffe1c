"""Python (`kubernetes`) side of the policy isolation e2e test.

    iso.py KUBECONFIG OPS_JSON

OPS_JSON is a list of {"verb": "list" | "get", "resource": "configmaps" |
"pods" | "secrets", "ns": ..., "name": ...}. One JSON line per op, in order:
{"status", "reason", "message", "warning", "names"} — for a refusal the
status and reason of the ApiException the SDK raised (its usual forbidden
error), for a success the item names and the Warning header.
"""

import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException

CALLS = {
    ("list", "configmaps"): "list_namespaced_config_map_with_http_info",
    ("list", "pods"): "list_namespaced_pod_with_http_info",
    ("list", "secrets"): "list_namespaced_secret_with_http_info",
    ("get", "configmaps"): "read_namespaced_config_map_with_http_info",
    ("get", "pods"): "read_namespaced_pod_with_http_info",
    ("get", "secrets"): "read_namespaced_secret_with_http_info",
}


def header(headers, name):
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def run(core, op):
    method = getattr(core, CALLS[(op["verb"], op["resource"])])
    args = [op["name"], op["ns"]] if op["verb"] == "get" else [op["ns"]]
    try:
        data, status, headers = method(*args)
    except ApiException as e:
        body = {}
        try:
            body = json.loads(e.body)
        except (TypeError, ValueError):
            pass
        return {
            "exception": type(e).__name__,
            "status": e.status,
            "reason": body.get("reason", e.reason),
            "message": body.get("message", ""),
        }
    items = getattr(data, "items", None)
    names = [i.metadata.name for i in items] if items is not None else [
        data.metadata.name]
    return {"status": status, "names": sorted(names),
            "warning": header(headers, "Warning")}


def main():
    config.load_kube_config(config_file=sys.argv[1])
    core = client.CoreV1Api()
    for op in json.loads(sys.argv[2]):
        print(json.dumps(run(core, op)), flush=True)


if __name__ == "__main__":
    main()
