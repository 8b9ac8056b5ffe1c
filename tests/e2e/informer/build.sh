#!/usr/bin/env bash
# multicluster e2e: a client-go shared informer (client-go pinned in go.mod;
# modules from the Go module proxy). Builds ./*.go into ~/.cache/mca/informer/<source hash>/prog.
# Idempotent: rebuilt only when go.mod, go.sum, a .go file or Go change.
# Last stdout line: {"command": [...], "version": "..."}.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v go >/dev/null || {
  echo "informer: go not found on PATH" >&2
  exit 1
}

stamp="$(cat "$here/go.mod" "$here/go.sum" "$here"/*.go | sha256sum | cut -d' ' -f1)-$(go env GOVERSION)"
# One directory per source version: worktrees building different versions
# at once never overwrite each other's program.
out="${MCA_CACHE_DIR:-$HOME/.cache/mca}/informer/${stamp:0:16}"
mkdir -p "$out"
if [[ ! -x "$out/prog" || "$(cat "$out/.stamp" 2>/dev/null)" != "$stamp" ]]; then
  echo "informer: go build (first build downloads modules and compiles client-go)" >&2
  rm -f "$out/.stamp"
  (cd "$here" && GOFLAGS=-mod=readonly go build -trimpath -o "$out/prog.tmp" .)
  mv -f "$out/prog.tmp" "$out/prog"
  echo "$stamp" >"$out/.stamp"
else
  echo "informer: $out/prog up to date" >&2
fi
version="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$here/go.mod")"
[[ -n "$version" ]] || {
  echo "informer: no k8s.io/client-go in go.mod" >&2
  exit 1
}
printf '{"command": ["%s"], "version": "client-go %s"}\n' "$out/prog" "$version"
