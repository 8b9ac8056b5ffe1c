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

# shellcheck source=common.sh
source "$here/common.sh"

k8s_version="$(module_version "$here/kube/go.mod" k8s.io/kubernetes)"
etcd_version="$(module_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)"

cache_root="${MCA_CACHE_DIR:-$HOME/.cache/mca}"
k8s_dir="$cache_root/bin/k8s-$k8s_version"
etcd_dir="$cache_root/bin/etcd-$etcd_version"
mkdir -p "$k8s_dir" "$etcd_dir"

lock_cache "$cache_root"

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

go_build "$here/etcd" go.etcd.io/etcd/server/v3 "$etcd_dir/etcd" "-s -w" "40 s"
go_build "$here/etcd" go.etcd.io/etcd/etcdctl/v3 "$etcd_dir/etcdctl" "-s -w" "10 s"
go_build "$here/kube" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_dir/kube-apiserver" "$k8s_ldflags" "3-4 min"
go_build "$here/kube" k8s.io/kubernetes/cmd/kubectl "$k8s_dir/kubectl" "$k8s_ldflags" "30 s"
go_build "$here/kube" k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_dir/kube-controller-manager" "$k8s_ldflags" "1 min"
go_build "$here/kube" k8s.io/kubernetes/cmd/kubelet "$k8s_dir/kubelet" "$k8s_ldflags" "2-7 min"

echo "etcd=$etcd_dir/etcd"
echo "etcdctl=$etcd_dir/etcdctl"
echo "kube-apiserver=$k8s_dir/kube-apiserver"
echo "kube-controller-manager=$k8s_dir/kube-controller-manager"
echo "kubectl=$k8s_dir/kubectl"
echo "kubelet=$k8s_dir/kubelet"
