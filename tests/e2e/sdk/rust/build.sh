#!/usr/bin/env bash
# Builds the kube-rs proof-tier program into ~/.cache/mca/sdk/rust/ (never
# into the repository). Progress goes to stderr; the last stdout line is
# {"command": [...], "version": "..."} for the SDK matrix runner.
# Warm runs skip cargo when the binary is newer than every source file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${MCA_CACHE_DIR:-$HOME/.cache/mca}/sdk/rust"
target="$out/target"
bin="$target/debug/mca-sdk-rust"

log() { echo "[sdk/rust] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
command -v cargo >/dev/null || die "cargo not found (install Rust >= 1.89 with rustup)"
command -v rustc >/dev/null || die "rustc not found (install Rust >= 1.89 with rustup)"

locked_version() { # package name -> version recorded in Cargo.lock
  awk -v want="name = \"$1\"" '$0 == want { getline; gsub(/version = |"/, ""); print; exit }' \
    "$here/Cargo.lock"
}

newer_sources() {
  find "$here/Cargo.toml" "$here/Cargo.lock" "$here/build.rs" "$here/src" \
    -type f -newer "$bin" -print -quit
}

if [[ -x "$bin" && -z "$(newer_sources)" ]]; then
  log "up to date: $bin"
else
  rust_version="$(rustc --version | awk '{print $2}')"
  if [[ "$(printf '%s\n1.89.0\n' "${rust_version%%-*}" | sort -V | head -n1)" != "1.89.0" ]]; then
    die "kube 5 needs rustc >= 1.89, found $rust_version"
  fi
  mkdir -p "$out"
  log "cargo build (rustc $rust_version) into $target"
  start=$SECONDS
  cargo build --locked --manifest-path "$here/Cargo.toml" --target-dir "$target" >&2
  touch "$bin"
  log "built in $((SECONDS - start)) s: $bin"
fi

printf '{"command": ["%s"], "version": "kube %s"}\n' "$bin" "$(locked_version kube)"
