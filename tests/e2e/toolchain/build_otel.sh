#!/usr/bin/env bash
# Builds otlp-sink (./otel): the OpenTelemetry Collector's own OTLP receiver
# (go.opentelemetry.io/collector/receiver/otlpreceiver, OTLP/gRPC and
# OTLP/HTTP with protobuf or JSON bodies) writing what it accepts as OTLP JSON
# lines, for the tracing tests (tests/e2e/tracing_e2e_test.ts). The result is
# cached outside the repository, keyed by the receiver's version and a hash of
# the wrapper module (so an edit to main.go is rebuilt, never served stale):
#
#   ${MCA_CACHE_DIR:-~/.cache/mca}/bin/otel-<version>-<hash>/otlp-sink
#
# Idempotent: a binary that is already there is not rebuilt (pass --force to
# rebuild). It is linked to a temporary name and renamed into place, so an
# interrupted build never leaves a truncated file behind; build.sh's lock file
# serialises concurrent runs.
#
# Progress goes to stderr. On success, stdout carries one `otlp-sink=path`
# line (tests/support/otlp_sink.ts parses it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module="$here/otel"
force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help)
      sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build_otel.sh: unknown argument: $arg" >&2
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
receiver=go.opentelemetry.io/collector/receiver/otlpreceiver
version="$(awk -v m="$receiver" '($1 == m) { print $2; exit } ($1 == "require" && $2 == m) { print $3; exit }' "$module/go.mod")"
[[ -n "$version" ]] || die "cannot find $receiver in $module/go.mod"
hash="$(cat "$module/go.mod" "$module/go.sum" "$module/main.go" | sha256sum | cut -c1-12)"

cache_root="${MCA_CACHE_DIR:-$HOME/.cache/mca}"
dir="$cache_root/bin/otel-$version-$hash"
out="$dir/otlp-sink"
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
  log "otlp-sink: up to date ($out)"
else
  command -v go >/dev/null 2>&1 ||
    die "go is not on PATH; install Go >= 1.26 (https://go.dev/dl/) to build otlp-sink"
  log "using $(go version)"
  log "building otlp-sink ($receiver $version; cold: ~1 min)..."
  start=$SECONDS
  tmp_out="$dir/.otlp-sink.tmp.$$"
  # In the background + wait, so a signal reaches the trap (and go) at once.
  (
    cd "$module"
    CGO_ENABLED=0 exec go build -trimpath -buildvcs=false -mod=readonly \
      -ldflags "-s -w" -o "$tmp_out" .
  ) &
  build_pid=$!
  rc=0
  wait "$build_pid" || rc=$?
  build_pid=""
  [[ "$rc" == 0 ]] || die "building otlp-sink failed (exit $rc; see go's output above)"
  mv -f "$tmp_out" "$out"
  tmp_out=""
  log "built otlp-sink in $((SECONDS - start)) s -> $out"
fi

echo "otlp-sink=$out"
