# Shared by the toolchain build scripts (build.sh, build_helm.sh,
# build_otel.sh, build_audit_decode.sh): logging, versions from a wrapper
# module's go.mod, the cache lock, and one `go build` that never leaves a
# truncated binary behind. Source it after `set -euo pipefail`; the caller
# sets `force` (1 rebuilds what is already there).

log() { echo "toolchain: $*" >&2; }
die() {
  echo "toolchain: ERROR: $*" >&2
  exit 1
}

# module_version <go.mod> <module path>: the version a wrapper module pins.
module_version() {
  local v
  v="$(awk -v m="$2" '($1 == m) { print $2; exit } ($1 == "require" && $2 == m) { print $3; exit }' "$1")"
  [[ -n "$v" ]] || die "cannot find $2 in $1"
  echo "$v"
}

# lock_cache <cache root>: one build at a time per cache; a second caller
# waits, then finds the binaries.
lock_cache() {
  mkdir -p "$1/bin"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$1/bin/.build.lock"
    if ! flock -n 9; then
      log "another build holds $1/bin/.build.lock; waiting..."
      flock 9
    fi
  fi
}

# On exit or interruption: stop a running `go build` and drop its partial
# output.
tmp_out=""
build_pid=""
checked_go=0
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

require_go() {
  [[ "$checked_go" == 1 ]] && return 0
  command -v go >/dev/null 2>&1 ||
    die "go is not on PATH; install Go >= 1.26 (https://go.dev/dl/) to build the e2e toolchain"
  log "using $(go version)"
  checked_go=1
}

# go_build <module dir> <package> <output file> <ldflags> <cold-time hint>:
# builds unless the output is there (or `force` is 1), linking to a temporary
# name and renaming into place.
go_build() {
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
  mkdir -p "$(dirname "$out")"
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
