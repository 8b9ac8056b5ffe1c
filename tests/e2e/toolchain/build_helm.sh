#!/usr/bin/env bash
# Builds helm for the chart tests (tests/e2e/helm_test.ts) from ./helm, the
# wrapper module that pins helm.sh/helm/v3. The result is cached per version
# outside the repository:
#
#   ${MCA_CACHE_DIR:-~/.cache/mca}/bin/helm-<version>/helm
#
# Idempotent: a binary that is already there is not rebuilt (pass --force to
# rebuild). It is linked to a temporary name and renamed into place, so an
# interrupted build never leaves a truncated file behind; build.sh's lock file
# serialises concurrent runs.
#
# Progress goes to stderr. On success, stdout carries one `helm=path` line
# (tests/support/helm.ts parses it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help)
      sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build_helm.sh: unknown argument: $arg" >&2
      exit 2
      ;;
  esac
done

log() { echo "toolchain: $*" >&2; }
die() {
  echo "toolchain: ERROR: $*" >&2
  exit 1
}

# The version comes from the wrapper module, so go.mod is the single source of truth.
helm_version="$(awk '($1 == "helm.sh/helm/v3") { print $2; exit } ($1 == "require" && $2 == "helm.sh/helm/v3") { print $3; exit }' "$here/helm/go.mod")"
[[ -n "$helm_version" ]] || die "cannot find helm.sh/helm/v3 in $here/helm/go.mod"

cache_root="${MCA_CACHE_DIR:-$HOME/.cache/mca}"
dir="$cache_root/bin/helm-$helm_version"
out="$dir/helm"
mkdir -p "$dir"

# One build at a time per cache: a second caller waits, then finds the binary.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache_root/bin/.build.lock"
  if ! flock -n 9; then
    log "another build holds $cache_root/bin/.build.lock; waiting..."
    flock 9
  fi
fi

# On exit or interruption: stop a running `go build` and drop its partial output.
tmp_out=""
build_pid=""
cleanup() {
  if [[ -n "$build_pid" ]]; then
    kill "$build_pid" 2>/dev/null || true
    wait "$build_pid" 2>/dev/null || true
  fi
  [[ -z "$tmp_out" ]] || rm -f "$tmp_out"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ "$force" == 0 && -x "$out" ]]; then
  log "helm: up to date ($out)"
else
  command -v go >/dev/null 2>&1 ||
    die "go is not on PATH; install Go >= 1.26 (https://go.dev/dl/) to build helm"
  log "using $(go version)"
  log "building helm $helm_version (cold: ~1-2 min)..."
  start=$SECONDS
  tmp_out="$dir/.helm.tmp.$$"
  # `helm version` reports the pinned version, not "v3.x-dirty".
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  # In the background + wait, so a signal reaches the trap (and go) at once.
  (
    cd "$here/helm"
    CGO_ENABLED=0 exec go build -trimpath -buildvcs=false -mod=readonly \
      -ldflags "$ldflags" -o "$tmp_out" helm.sh/helm/v3/cmd/helm
  ) &
  build_pid=$!
  rc=0
  wait "$build_pid" || rc=$?
  build_pid=""
  [[ "$rc" == 0 ]] || die "building helm failed (exit $rc; see go's output above)"
  mv -f "$tmp_out" "$out"
  tmp_out=""
  log "built helm in $((SECONDS - start)) s -> $out"
fi

echo "helm=$out"
