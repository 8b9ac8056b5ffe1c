#!/usr/bin/env bash
# Installs the Ruby kubeclient proof-tier program into ~/.cache/mca/sdk/ruby/
# (Debian's ruby-kubeclient: RubyGems is not reachable from here). Progress
# goes to stderr; the last stdout line is {"command": [...], "version": "..."}
# for the SDK matrix runner. Warm runs only check that the copy is current.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${MCA_CACHE_DIR:-$HOME/.cache/mca}/sdk/ruby"
app="$out/app.rb"

log() { echo "[sdk/ruby] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

kubeclient_version() { # prints the version; fails if ruby or kubeclient is missing
  command -v ruby >/dev/null && ruby -e 'require "kubeclient"; print Kubeclient::VERSION' 2>/dev/null
}

if ! version="$(kubeclient_version)"; then
  command -v apt-get >/dev/null || die "ruby with kubeclient missing and no apt-get to install it"
  log "installing Debian's ruby-kubeclient"
  if ! apt-get install -y ruby-kubeclient >&2; then
    log "apt-get install failed; refreshing the package lists once"
    apt-get update >&2
    apt-get install -y ruby-kubeclient >&2 || die "apt-get install -y ruby-kubeclient failed"
  fi
  version="$(kubeclient_version)" ||
    die "ruby cannot load kubeclient even after installing ruby-kubeclient"
fi

if [[ -f "$app" && ! "$here/app.rb" -nt "$app" ]]; then
  log "up to date: $app"
else
  mkdir -p "$out"
  ruby -c "$here/app.rb" >/dev/null || die "app.rb does not parse"
  cp "$here/app.rb" "$app.tmp"
  mv "$app.tmp" "$app"
  log "installed $app"
fi

ruby_bin="$(readlink -f "$(command -v ruby)")"
printf '{"command": ["%s", "%s"], "version": "kubeclient %s"}\n' "$ruby_bin" "$app" "$version"
