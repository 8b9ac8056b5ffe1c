#!/usr/bin/env bash
# Builds the binaries the e2e "real cluster" tier runs: kube-apiserver,
# kube-controller-manager, kubectl and kubelet (the node tier) from ./kube,
# and etcd + etcdctl from ./etcd. Results are cached per version outside the repository:
#
#   ${MCA_CACHE_DIR:-~/.cache/mca}/bin/k8s-<version>/{kube-apiserver,kube-controller-manager,kubectl,kubelet}
#   ${MCA_CACHE_DIR:-~/.cache/mca}/bin/etcd-<version>/{etcd,etcdctl}
#
# Idempotent: a binary that is already there is not rebuilt (pass --force to
# rebuild everything). Each binary is linked to a temporary name and renamed
# into place, so an interrupted build never leaves a truncated file behind.
# A lock file serialises concurrent runs.
#
# Progress goes to stderr. On success, stdout carries one `name=path` line per
# binary (tests/support/cluster.ts parses it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help)
      sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build.sh: unknown argument: $arg" >&2
      exit 2
      ;;
  esac
done

log() { echo "toolchain: $*" >&2; }
die() {
  echo "toolchain: ERROR: $*" >&2
  exit 1
}

# Versions come from the wrapper modules, so go.mod is the single source of truth.
module_version() { # <go.mod> <module path>
  local v
  v="$(awk -v m="$2" '($1 == m) { print $2; exit } ($1 == "require" && $2 == m) { print $3; exit }' "$1")"
  [[ -n "$v" ]] || die "cannot find $2 in $1"
  echo "$v"
}
k8s_version="$(module_version "$here/kube/go.mod" k8s.io/kubernetes)"
etcd_version="$(module_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)"

cache_root="${MCA_CACHE_DIR:-$HOME/.cache/mca}"
k8s_dir="$cache_root/bin/k8s-$k8s_version"
etcd_dir="$cache_root/bin/etcd-$etcd_version"
mkdir -p "$k8s_dir" "$etcd_dir"

# One build at a time per cache: a second caller waits, then finds the binaries.
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

# vX.Y.Z -> ldflags that make `--version` and the /version endpoint report it.
k8s_major="${k8s_version#v}"
k8s_major="${k8s_major%%.*}"
k8s_minor="${k8s_version#v*.}"
k8s_minor="${k8s_minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version"
  k8s_ldflags+=" -X $pkg.gitMajor=$k8s_major"
  k8s_ldflags+=" -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean"
  k8s_ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

checked_go=0
require_go() {
  [[ "$checked_go" == 1 ]] && return 0
  command -v go >/dev/null 2>&1 ||
    die "go is not on PATH; install Go >= 1.26 (https://go.dev/dl/) to build the e2e toolchain"
  log "using $(go version)"
  checked_go=1
}

# build <module dir> <package> <output file> <ldflags> <cold-time hint>
build() {
  local module="$1" pkg="$2" out="$3" ldflags="$4" hint="$5"
  local name
  name="$(basename "$out")"
  if [[ "$force" == 0 && -x "$out" ]]; then
    log "$name: up to date ($out)"
    return 0
  fi
  require_go
  log "building $name (cold: ~$hint)..."
  local start=$SECONDS
  tmp_out="$(dirname "$out")/.$name.tmp.$$"
  # In the background + wait, so a signal reaches the trap (and go) at once.
  (
    cd "$module"
    CGO_ENABLED=0 exec go build -trimpath -buildvcs=false -mod=readonly \
      -ldflags "$ldflags" -o "$tmp_out" "$pkg"
  ) &
  build_pid=$!
  local rc=0
  wait "$build_pid" || rc=$?
  build_pid=""
  [[ "$rc" == 0 ]] || die "building $name failed (exit $rc; see go's output above)"
  mv -f "$tmp_out" "$out"
  tmp_out=""
  log "built $name in $((SECONDS - start)) s -> $out"
}

build "$here/etcd" go.etcd.io/etcd/server/v3 "$etcd_dir/etcd" "-s -w" "40 s"
build "$here/etcd" go.etcd.io/etcd/etcdctl/v3 "$etcd_dir/etcdctl" "-s -w" "10 s"
build "$here/kube" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_dir/kube-apiserver" "$k8s_ldflags" "3-4 min"
build "$here/kube" k8s.io/kubernetes/cmd/kubectl "$k8s_dir/kubectl" "$k8s_ldflags" "30 s"
build "$here/kube" k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_dir/kube-controller-manager" "$k8s_ldflags" "1 min"
build "$here/kube" k8s.io/kubernetes/cmd/kubelet "$k8s_dir/kubelet" "$k8s_ldflags" "2-7 min"

echo "etcd=$etcd_dir/etcd"
echo "etcdctl=$etcd_dir/etcdctl"
echo "kube-apiserver=$k8s_dir/kube-apiserver"
echo "kube-controller-manager=$k8s_dir/kube-controller-manager"
echo "kubectl=$k8s_dir/kubectl"
echo "kubelet=$k8s_dir/kubelet"
