"""SDK-matrix program for the official Python client (`kubernetes`).

Uses only `config.load_incluster_config()`: no server, CA, token or namespace
is configured here. Prints one JSON line per operation:
    {"op": "...", "ok": true|false, "detail": "..."}
Exits 0 even when an operation fails; non-zero only on a crash.
"""

import json
import os
import sys
import threading
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

NAME = "python"
SEED = f"sdk-{NAME}-seed"
OBJ = f"sdk-{NAME}-x"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def emit(op, ok, detail):
    print(json.dumps({"op": op, "ok": bool(ok), "detail": str(detail)}), flush=True)


def api_error(e):
    if isinstance(e, ApiException):
        return f"HTTP {e.status} {e.reason}: {(e.body or '')[:300]}"
    return f"{type(e).__name__}: {e}"


OP_TIMEOUT_S = 30


def run(op, fn):
    # Each operation gets 30 s in a daemon thread, so a hung request fails
    # its operation instead of the whole program (the SDK's own timeouts are
    # left at their defaults).
    result = {}

    def target():
        try:
            result["value"] = fn()
        except Exception as e:  # noqa: BLE001 - every failure is a result here
            result["value"] = (False, api_error(e))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(OP_TIMEOUT_S)
    ok, detail = result.get("value", (False, f"no answer within {OP_TIMEOUT_S} s"))
    emit(op, ok, detail)


def main():
    config.load_incluster_config()
    with open(os.path.join(SA_DIR, "namespace")) as f:
        ns = f.read().strip()
    want_user = f"system:serviceaccount:{ns}:{os.environ.get('MCA_E2E_SA', '')}"
    core = client.CoreV1Api()
    authn = client.AuthenticationV1Api()

    def whoami():
        review = authn.create_self_subject_review(
            body=client.V1SelfSubjectReview(
                api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"
            )
        )
        user = review.status.user_info.username
        return user == want_user, user

    def get():
        cm = core.read_namespaced_config_map(SEED, ns)
        return cm.metadata.name == SEED, cm.metadata.name

    def list_():
        items = core.list_namespaced_config_map(ns).items
        names = [cm.metadata.name for cm in items]
        return SEED in names, f"{len(names)} configmaps, seed {'included' if SEED in names else 'missing'}"

    def create():
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=OBJ, labels={"sdk": NAME}),
            data={"k": "v1"},
        )
        cm = core.create_namespaced_config_map(ns, body)
        return cm.metadata.name == OBJ, cm.metadata.name

    def patch_merge():
        cm = core.patch_namespaced_config_map(
            OBJ, ns, {"data": {"k": "v2"}},
            _content_type="application/merge-patch+json",
        )
        return cm.data.get("k") == "v2", f"data.k={cm.data.get('k')}"

    def apply():
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": OBJ, "labels": {"sdk": NAME}},
            "data": {"applied": "yes"},
        }
        cm = core.patch_namespaced_config_map(
            OBJ, ns, body, field_manager=f"mca-e2e-{NAME}",
            _content_type="application/apply-patch+yaml",
        )
        return cm.data.get("applied") == "yes", f"data.applied={cm.data.get('applied')}"

    def watch_():
        # The initial ADDED of our object shows the watch is streaming; a
        # patch from another thread must then come back as MODIFIED.
        w = watch.Watch()
        deadline = time.monotonic() + 20
        seen = []
        patcher = None
        try:
            for event in w.stream(
                core.list_namespaced_config_map, ns,
                label_selector=f"sdk={NAME}", timeout_seconds=20,
                _request_timeout=25,
            ):
                obj = event["object"]
                data = obj.data or {}
                seen.append(f"{event['type']} {obj.metadata.name} {data.get('k')}")
                if event["type"] == "ADDED" and obj.metadata.name == OBJ and patcher is None:
                    patcher = threading.Thread(
                        target=lambda: core.patch_namespaced_config_map(
                            OBJ, ns, {"data": {"k": "v3"}},
                            _content_type="application/merge-patch+json",
                        )
                    )
                    patcher.start()
                elif (event["type"] == "MODIFIED" and obj.metadata.name == OBJ
                      and data.get("k") == "v3"):
                    return time.monotonic() < deadline, seen[-1]
                if time.monotonic() >= deadline:
                    break
        finally:
            w.stop()
            if patcher is not None:
                patcher.join()
        return False, f"no MODIFIED event within 20 s; saw: {seen}"

    def delete():
        status = core.delete_namespaced_config_map(OBJ, ns)
        return True, f"status={getattr(status, 'status', None)}"

    def forbidden():
        try:
            core.list_namespaced_secret(ns)
        except ApiException as e:
            reason = ""
            try:
                reason = json.loads(e.body).get("reason", "")
            except (TypeError, ValueError):
                pass
            return e.status == 403 and reason == "Forbidden", f"{e.status} {reason or e.reason}"
        return False, "listing secrets succeeded"

    for op, fn in [
        ("whoami", whoami), ("get", get), ("list", list_), ("create", create),
        ("patch-merge", patch_merge), ("apply", apply), ("watch", watch_),
        ("delete", delete), ("forbidden", forbidden),
    ]:
        run(op, fn)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # A thread stuck in a hung request must not keep the process alive.
    os._exit(code)
