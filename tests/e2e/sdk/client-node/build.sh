#!/usr/bin/env bash
# SDK matrix: @kubernetes/client-node under Node (version pinned in
# package.json + package-lock.json; 1.x because 2.x needs Node >= 22.19).
# Installs into ~/.cache/mca/sdk/client-node/app/ with `npm ci`, next to a
# copy of prog.mjs (ES modules resolve node_modules from the script's dir).
# Idempotent: reinstalled only when the lock file, prog.mjs or Node change.
# Last stdout line: {"command": [...], "version": "..."}.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${MCA_CACHE_DIR:-$HOME/.cache/mca}/sdk/client-node"
app="$out/app"
node="$(command -v node || true)"
[[ -n "$node" ]] || {
  echo "sdk client-node: node not found on PATH" >&2
  exit 1
}
mkdir -p "$out"

stamp="$(cat "$here/package.json" "$here/package-lock.json" "$here/prog.mjs" | sha256sum | cut -d' ' -f1)-$("$node" --version)"
if [[ ! -f "$app/node_modules/@kubernetes/client-node/package.json" || "$(cat "$out/.stamp" 2>/dev/null)" != "$stamp" ]]; then
  echo "sdk client-node: npm ci into $app" >&2
  rm -rf "$app" "$out/.stamp"
  mkdir -p "$app"
  cp "$here/package.json" "$here/package-lock.json" "$here/prog.mjs" "$app/"
  (cd "$app" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  echo "$stamp" >"$out/.stamp"
else
  echo "sdk client-node: $app up to date" >&2
fi
version="$("$node" -p 'require(process.argv[1]).version' "$app/node_modules/@kubernetes/client-node/package.json")"
printf '{"command": ["%s", "%s"], "version": "@kubernetes/client-node %s (Node %s)"}\n' \
  "$node" "$app/prog.mjs" "$version" "$("$node" --version)"
