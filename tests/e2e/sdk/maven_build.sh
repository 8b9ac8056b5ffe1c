#!/usr/bin/env bash
# Shared by the Java SDK programs of the proof tier:
#   maven_build.sh DIR NAME VERSION_PROPERTY LABEL
# builds DIR's Maven project into ~/.cache/mca/sdk/NAME/app.jar (Maven's build
# directory goes there too, never into the repository; dependencies stay in
# ~/.m2). Progress goes to stderr; the last stdout line is
# {"command": [...], "version": "LABEL <VERSION_PROPERTY of pom.xml>"} for the
# SDK matrix runner. Warm runs skip Maven when the jar is newer than every
# source file.
set -euo pipefail

here="$1" name="$2" property="$3" label="$4"
out="${MCA_CACHE_DIR:-$HOME/.cache/mca}/sdk/$name"
jar="$out/app.jar"

log() { echo "[sdk/$name] $*" >&2; }
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

version="$(sed -n "s:.*<$property>\(.*\)</$property>.*:\1:p" "$here/pom.xml")"
printf '{"command": ["%s", "-jar", "%s"], "version": "%s %s"}\n' \
  "$java_bin" "$jar" "$label" "$version"
