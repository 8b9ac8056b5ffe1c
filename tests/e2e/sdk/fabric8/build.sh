#!/usr/bin/env bash
# Builds the fabric8 proof-tier program (see ../maven_build.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../maven_build.sh" "$here" fabric8 fabric8.version "fabric8 kubernetes-client"
