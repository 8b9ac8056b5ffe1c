#!/usr/bin/env bash
# Builds the client-java proof-tier program (see ../maven_build.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../maven_build.sh" "$here" java-official client-java.version client-java
