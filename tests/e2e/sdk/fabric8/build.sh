#!/usr/bin/env bash
# Builds the fabric8 proof-tier program into
# ~/.cache/mca/sdk/fabric8/app.jar (Maven's build directory is also
# moved there, never into the repository; dependencies stay in ~/.m2).
# Progress goes to stderr; the last stdout line is
# {"command": [...], "version": "..."} for the SDK matrix runner.
# Warm runs skip Maven when the jar is newer than every source file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${MCA_CACHE_DIR:-$HOME/.cache/mca}/sdk/fabric8"
jar="$out/app.jar"

log() { echo "[sdk/fabric8] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v java >/dev/null || die "java not found (need a JDK 17+)"
command -v mvn >/dev/null || die "mvn not found (need Maven 3.8+)"
java_bin="$(readlink -f "$(command -v java)")"

newer_sources() {
  find "$here/pom.xml" "$here/src" -type f -newer "$jar" -print -quit
}

if [[ -f "$jar" && -z "$(newer_sources)" ]]; then
  log "up to date: $jar"
else
  mkdir -p "$out"
  log "mvn package into $out/build"
  start=$SECONDS
  mvn -B -q -Dstyle.color=never -f "$here/pom.xml" -Dmca.build.dir="$out/build" package >&2 ||
    die "mvn package failed"
  cp "$out/build/app.jar" "$jar.tmp"
  mv "$jar.tmp" "$jar"
  log "built in $((SECONDS - start)) s: $jar"
fi

version="$(sed -n 's:.*<fabric8.version>\(.*\)</fabric8.version>.*:\1:p' "$here/pom.xml")"
printf '{"command": ["%s", "-jar", "%s"], "version": "fabric8 kubernetes-client %s"}\n' \
  "$java_bin" "$jar" "$version"
