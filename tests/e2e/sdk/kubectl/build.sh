#!/usr/bin/env bash
# SDK matrix: kubectl. Nothing to compile: the kubectl matching the test
# cluster comes from the toolchain build (cached; warm in under a second),
# linked into ~/.cache/mca/sdk/kubectl/. The program is prog.sh.
# Last stdout line: {"command": [...], "version": "..."}.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${MCA_CACHE_DIR:-$HOME/.cache/mca}/sdk/kubectl"
mkdir -p "$out"

echo "sdk kubectl: toolchain build (cached)" >&2
kubectl_path="$(bash "$here/../../toolchain/build.sh" | sed -n 's/^kubectl=//p')"
[[ -x "$kubectl_path" ]] || {
  echo "sdk kubectl: toolchain did not report kubectl" >&2
  exit 1
}
ln -sfn "$kubectl_path" "$out/kubectl"
version="$("$out/kubectl" version --client -o json | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -n 1)"
[[ -n "$version" ]] || {
  echo "sdk kubectl: cannot read kubectl's version" >&2
  exit 1
}
printf '{"command": ["/bin/bash", "%s", "%s"], "version": "kubectl %s"}\n' \
  "$here/prog.sh" "$out/kubectl" "$version"
