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

# shellcheck source=common.sh
source "$here/common.sh"

# The version comes from the wrapper module, so go.mod is the single source of truth.
receiver=go.opentelemetry.io/collector/receiver/otlpreceiver
version="$(module_version "$module/go.mod" "$receiver")"
hash="$(cat "$module/go.mod" "$module/go.sum" "$module/main.go" | sha256sum | cut -c1-12)"

cache_root="${MCA_CACHE_DIR:-$HOME/.cache/mca}"
dir="$cache_root/bin/otel-$version-$hash"
out="$dir/otlp-sink"
mkdir -p "$dir"

lock_cache "$cache_root"
go_build "$module" . "$out" "-s -w" "1 min"

echo "otlp-sink=$out"
