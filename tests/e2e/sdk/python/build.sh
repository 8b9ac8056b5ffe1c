#!/usr/bin/env bash
# SDK matrix: the official Python client (PyPI `kubernetes`, pinned in
# requirements.txt), installed into a venv under ~/.cache/mca/sdk/python/.
# Idempotent: the venv is rebuilt only when requirements.txt changes.
# Last stdout line: {"command": [...], "version": "..."}.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${MCA_CACHE_DIR:-$HOME/.cache/mca}/sdk/python"
venv="$out/venv"
mkdir -p "$out"

python="${PYTHON:-python3}"
command -v "$python" >/dev/null || {
  echo "sdk python: $python not found" >&2
  exit 1
}
stamp="$(cat "$here/requirements.txt" | sha256sum | cut -d' ' -f1)-$("$python" -c 'import sys; print(sys.version.split()[0])')"
if [[ ! -x "$venv/bin/python" || "$(cat "$out/.stamp" 2>/dev/null)" != "$stamp" ]]; then
  echo "sdk python: creating venv $venv and installing requirements.txt" >&2
  rm -rf "$venv" "$out/.stamp"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check --quiet \
    -r "$here/requirements.txt" >&2
  echo "$stamp" >"$out/.stamp"
else
  echo "sdk python: venv up to date ($venv)" >&2
fi
version="$("$venv/bin/python" -c 'import kubernetes; print(kubernetes.__version__)')"
printf '{"command": ["%s", "%s"], "version": "python kubernetes %s"}\n' \
  "$venv/bin/python" "$here/prog.py" "$version"
