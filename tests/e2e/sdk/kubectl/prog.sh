#!/usr/bin/env bash
# The SDK-matrix program for kubectl: runs the matrix's operations with
# kubectl's in-cluster configuration only (no kubeconfig, no flags naming a
# server, CA, token or namespace) and prints one JSON line per operation:
#   {"op": "...", "ok": true|false, "detail": "..."}
# Usage: prog.sh /path/to/kubectl
# Exit status 0 even when an operation fails; non-zero only on a crash.
set -uo pipefail

kubectl_bin="${1:?usage: prog.sh /path/to/kubectl}"
name=kubectl
seed="sdk-$name-seed"
obj="sdk-$name-x"
sa_dir=/var/run/secrets/kubernetes.io/serviceaccount
ns="$(cat "$sa_dir/namespace")"
want_user="system:serviceaccount:$ns:${MCA_E2E_SA:-}"

# kubectl finds no kubeconfig (HOME has none, KUBECONFIG is unset), so it
# falls back to its in-cluster configuration.
unset KUBECONFIG
# Each call gets 30 s (kubectl itself has no request timeout), so a hung
# request fails its operation instead of the whole program.
k() { timeout 30 "$kubectl_bin" "$@"; }
# kr ARGS...: runs kubectl; stdout in $out, stderr in $err, status returned.
# (stderr apart: kubectl may warn there even when the call succeeds.)
errfile="$(mktemp -p "${HOME:?}" .kubectl-stderr.XXXXXX)"
trap 'rm -f "$errfile"' EXIT
kr() {
  local rc
  out="$(k "$@" 2>"$errfile")"
  rc=$?
  err="$(cat "$errfile")"
  ((rc == 124)) && err="kubectl killed: no answer within 30 s. $err"
  return $rc
}
# said EXPECTED: detail for a check of $out (stderr added when it differs).
said() { if [[ "$out" == "$1" ]]; then printf '%s' "$out"; else printf '%s %s' "$out" "$err"; fi; }

json_str() {
  local s
  s="$(printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037')"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\n'/\\n}"
  s="${s//$'\r'/\\r}"
  s="${s//$'\t'/\\t}"
  printf '"%s"' "$s"
}
emit() { # op ok(true|false) detail
  printf '{"op":%s,"ok":%s,"detail":%s}\n' "$(json_str "$1")" "$2" "$(json_str "$3")"
}
check() { # op condition-status detail
  if [[ "$2" == 0 ]]; then emit "$1" true "$3"; else emit "$1" false "$3"; fi
}

# whoami
kr auth whoami -o 'jsonpath={.status.userInfo.username}'
[[ "$out" == "$want_user" ]]
check whoami $? "$(said "$want_user")"

# get
kr get configmap "$seed" -o 'jsonpath={.metadata.name}'
[[ "$out" == "$seed" ]]
check get $? "$(said "$seed")"

# list
kr get configmaps -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}'
if grep -qx -- "$seed" <<<"$out"; then
  emit list true "$(grep -c . <<<"$out") configmaps, seed included"
else
  emit list false "seed missing: $out $err"
fi

# create
kr create -f - -o 'jsonpath={.metadata.name}' <<EOF
{"apiVersion": "v1", "kind": "ConfigMap",
 "metadata": {"name": "$obj", "labels": {"sdk": "$name"}},
 "data": {"k": "v1"}}
EOF
[[ "$out" == "$obj" ]]
check create $? "$(said "$obj")"

# patch-merge
kr patch configmap "$obj" --type=merge -p '{"data":{"k":"v2"}}' -o 'jsonpath={.data.k}'
[[ "$out" == "v2" ]]
check patch-merge $? "data.k=$(said v2)"

# apply (server-side)
kr apply --server-side --field-manager="mca-e2e-$name" -f - -o 'jsonpath={.data.applied}' <<EOF
{"apiVersion": "v1", "kind": "ConfigMap",
 "metadata": {"name": "$obj", "labels": {"sdk": "$name"}},
 "data": {"applied": "yes"}}
EOF
[[ "$out" == "yes" ]]
check apply $? "data.applied=$(said yes)"

# watch: the initial ADDED of our object shows the watch is running; then a
# concurrent patch must come back as MODIFIED within 20 s.
deadline=$((SECONDS + 20))
coproc WATCH {
  exec "$kubectl_bin" get configmaps -l "sdk=$name" --watch --output-watch-events \
    -o 'jsonpath={.type} {.object.metadata.name} {.object.data.k}{"\n"}' 2>&1
}
watch_pid=$WATCH_PID
patched=0
result="no MODIFIED event within 20 s"
watch_ok=1
seen=()
while ((SECONDS < deadline)); do
  if ! IFS= read -r -t $((deadline - SECONDS)) -u "${WATCH[0]}" line; then
    [[ ${#seen[@]} -gt 0 ]] && result="$result; saw: ${seen[*]}"
    break
  fi
  seen+=("$line")
  if [[ "$line" == "ADDED $obj "* && $patched == 0 ]]; then
    patched=1
    k patch configmap "$obj" --type=merge -p '{"data":{"k":"v3"}}' >/dev/null 2>&1 &
  elif [[ "$line" == "MODIFIED $obj v3" ]]; then
    result="$line"
    watch_ok=0
    break
  fi
done
kill "$watch_pid" 2>/dev/null
wait "$watch_pid" 2>/dev/null
wait
check watch $watch_ok "$result"

# delete
kr delete configmap "$obj" --wait=false
check delete $? "$out $err"

# forbidden: kubectl must report the server's 403 as an API error.
# -v=6 logs each response: `"Response" verb="GET" url="..." status="403
# Forbidden" milliseconds=N` (older kubectl: `GET url 403 Forbidden in N
# milliseconds`).
out="$(k get secrets -v=6 2>&1)"
rc=$?
status="$(
  { grep -o 'status="[0-9][0-9][0-9] [^"]*"' <<<"$out" | sed 's/^status="//; s/"$//'
    grep -o ' [0-9][0-9][0-9] [A-Za-z ]* in [0-9]* milliseconds' <<<"$out" | sed 's/ in [0-9]* milliseconds//; s/^ //'
  } | tail -n 1
)"
message="$(grep -o 'Error from server ([A-Za-z]*).*' <<<"$out" | head -n 1)"
[[ $rc != 0 && "$status" == "403 Forbidden" && "$message" == "Error from server (Forbidden)"* ]]
check forbidden $? "${status:-no status seen}: ${message:-$(tail -n 3 <<<"$out")}"
exit 0
