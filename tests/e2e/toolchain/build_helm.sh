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

# shellcheck source=common.sh
source "$here/common.sh"

helm_version="$(module_version "$here/helm/go.mod" helm.sh/helm/v3)"

cache_root="${MCA_CACHE_DIR:-$HOME/.cache/mca}"
dir="$cache_root/bin/helm-$helm_version"
out="$dir/helm"
mkdir -p "$dir"

lock_cache "$cache_root"
# `helm version` reports the pinned version, not "v3.x-dirty".
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
go_build "$here/helm" helm.sh/helm/v3/cmd/helm "$out" "$ldflags" "1-2 min"

echo "helm=$out"
