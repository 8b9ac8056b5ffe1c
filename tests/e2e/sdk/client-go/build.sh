#!/usr/bin/env bash
# SDK matrix: Go client-go (version pinned in go.mod; modules from the Go
# module proxy). Builds ./main.go into ~/.cache/mca/sdk/client-go/prog.
# `build.sh node` builds ./node/main.go instead (the node tier's long-running
# client-go app, same module and versions) into .../client-go/node, static
# (CGO_ENABLED=0), so that it runs alone in an image with no libc.
# Idempotent: rebuilt only when go.mod, go.sum, the program or Go change.
# Last stdout line: {"command": [...], "version": "..."}.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${MCA_CACHE_DIR:-$HOME/.cache/mca}/sdk/client-go"
mkdir -p "$out"
command -v go >/dev/null || {
  echo "sdk client-go: go not found on PATH" >&2
  exit 1
}

# The matrix program keeps its stamp file and cgo setting as they were.
case "${1:-}" in
  "") pkg=. bin=prog cgo="$(go env CGO_ENABLED)" stampfile=.stamp ;;
  node) pkg=./node bin=node cgo=0 stampfile=.stamp-node ;;
  *)
    echo "sdk client-go: unknown target: $1 (none, or node)" >&2
    exit 2
    ;;
esac

stamp="$(cat "$here/go.mod" "$here/go.sum" "$here/$pkg/main.go" | sha256sum | cut -d' ' -f1)-$(go env GOVERSION)"
if [[ ! -x "$out/$bin" || "$(cat "$out/$stampfile" 2>/dev/null)" != "$stamp" ]]; then
  echo "sdk client-go: go build $pkg (first build downloads modules and compiles client-go)" >&2
  rm -f "$out/$stampfile"
  (cd "$here" && CGO_ENABLED="$cgo" GOFLAGS=-mod=readonly go build -trimpath -o "$out/$bin.tmp" "$pkg")
  mv -f "$out/$bin.tmp" "$out/$bin"
  echo "$stamp" >"$out/$stampfile"
else
  echo "sdk client-go: $out/$bin up to date" >&2
fi
version="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$here/go.mod")"
[[ -n "$version" ]] || {
  echo "sdk client-go: no k8s.io/client-go in go.mod" >&2
  exit 1
}
printf '{"command": ["%s"], "version": "client-go %s"}\n' "$out/$bin" "$version"
