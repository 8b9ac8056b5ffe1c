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
# shellcheck source=common.sh
source "$here/common.sh"

hash="$(cat "$module/go.mod" "$module/go.sum" "$module/main.go" | sha256sum | cut -c1-12)"
cache_root="${MCA_CACHE_DIR:-$HOME/.cache/mca}"
dir="$cache_root/bin/audit-decode-$hash"
out="$dir/audit-decode"
mkdir -p "$dir"

lock_cache "$cache_root"
go_build "$module" . "$out" "" "20 s"
echo "audit-decode=$out"
