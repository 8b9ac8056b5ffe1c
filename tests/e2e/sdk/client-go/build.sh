#!/usr/bin/env bash
# SDK matrix: Go client-go (version pinned in go.mod; modules from the Go
# module proxy). Builds ./main.go into ~/.cache/mca/sdk/client-go/prog.
# Idempotent: rebuilt only when go.mod, go.sum, main.go or Go change.
# Last stdout line: {"command": [...], "version": "..."}.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${MCA_CACHE_DIR:-$HOME/.cache/mca}/sdk/client-go"
mkdir -p "$out"
command -v go >/dev/null || {
  echo "sdk client-go: go not found on PATH" >&2
  exit 1
}

stamp="$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -d' ' -f1)-$(go env GOVERSION)"
if [[ ! -x "$out/prog" || "$(cat "$out/.stamp" 2>/dev/null)" != "$stamp" ]]; then
  echo "sdk client-go: go build (first build downloads modules and compiles client-go)" >&2
  rm -f "$out/.stamp"
  (cd "$here" && GOFLAGS=-mod=readonly go build -trimpath -o "$out/prog.tmp" .)
  mv -f "$out/prog.tmp" "$out/prog"
  echo "$stamp" >"$out/.stamp"
else
  echo "sdk client-go: $out/prog up to date" >&2
fi
version="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$here/go.mod")"
[[ -n "$version" ]] || {
  echo "sdk client-go: no k8s.io/client-go in go.mod" >&2
  exit 1
}
printf '{"command": ["%s"], "version": "client-go %s"}\n' "$out/prog" "$version"
