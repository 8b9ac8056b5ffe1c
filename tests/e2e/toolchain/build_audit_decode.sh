#!/usr/bin/env bash
# Builds tests/e2e/audit_decode, the strict decoder of audit.k8s.io/v1 events
# (kube-apiserver's own Go types), cached outside the repository:
#
#   ${MCA_CACHE_DIR:-~/.cache/mca}/bin/audit-decode-<hash of go.mod, go.sum, main.go>/audit-decode
#
# Idempotent (--force rebuilds); linked to a temporary name and renamed into
# place; serialised with build.sh's lock. Progress goes to stderr; on success
# stdout carries one `audit-decode=path` line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module="$here/../audit_decode"
force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    *)
      echo "build_audit_decode.sh: unknown argument: $arg" >&2
      exit 2
      ;;
  esac
done
log() { echo "toolchain: $*" >&2; }
die() {
  echo "toolchain: ERROR: $*" >&2
  exit 1
}

hash="$(cat "$module/go.mod" "$module/go.sum" "$module/main.go" | sha256sum | cut -c1-12)"
cache_root="${MCA_CACHE_DIR:-$HOME/.cache/mca}"
dir="$cache_root/bin/audit-decode-$hash"
out="$dir/audit-decode"
mkdir -p "$dir"

if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache_root/bin/.build.lock"
  if ! flock -n 9; then
    log "another build holds $cache_root/bin/.build.lock; waiting..."
    flock 9
  fi
fi

if [[ "$force" == 1 || ! -x "$out" ]]; then
  command -v go >/dev/null 2>&1 || die "go is not on PATH; install Go >= 1.24 to build audit-decode"
  tmp_out="$dir/.audit-decode.tmp.$$"
  trap 'rm -f "$tmp_out"' EXIT
  log "building audit-decode (cold: ~20 s)..."
  (cd "$module" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -mod=readonly -o "$tmp_out" .) ||
    die "building audit-decode failed (see go's output above)"
  mv -f "$tmp_out" "$out"
fi
echo "audit-decode=$out"
