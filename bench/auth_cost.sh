#!/usr/bin/env bash
# bench/auth_cost.sh: instructions the server executes per gRPC Get, counted by
# callgrind (exact, unlike timings on a shared machine), with authentication off
# and on (a token of every folder, and a token of one folder, which makes the
# folder check read the image's folder).
#
# Usage: bench/auth_cost.sh BINARY [BINARY...]   (e.g. target/release/image-service)
# Each binary serves the demo catalog under callgrind twice, answering N1 then N2
# Gets (h2load, one connection, one stream); (Ir(N2) - Ir(N1)) / (N2 - N1) is
# the cost of one call, start-up and shutdown cancelling out. A binary without
# `hash-token` is measured with authentication off only.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly N1=${AUTH_COST_N1:-300} N2=${AUTH_COST_N2:-1300}
readonly TOKEN=bench-token.all FOLDER_TOKEN=bench-token.one
readonly IMAGE=fd8o2pjpr9dfpl308ukq CONTAINER_IMAGE=crpphk31u48ts5plqaqo
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A gRPC frame holding GetImageRequest{image_id} (field 1, 20 bytes).
frame() { printf '\x00\x00\x00\x00\x16\x0a\x14%s' "$1" >"$2"; }
frame "$IMAGE" "$work/compute.req"
frame "$CONTAINER_IMAGE" "$work/container.req"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Ir of one server run answering N Gets of PATH with body FILE.
run() { # binary n path body header tokens-file
  local bin=$1 n=$2 path=$3 body=$4 header=$5 tokens=$6 port out pid
  port=$(free_port)
  out=$work/callgrind.$RANDOM
  local args=(serve --grpc-listen "127.0.0.1:$port" --http-listen 127.0.0.1:0 --shutdown-delay 0s)
  [[ -n $tokens ]] && args+=(--auth-tokens "$tokens")
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "${args[@]}" >"$out.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    grep -q 'serving gRPC and REST' "$out.log" && break
    sleep 0.1
  done
  local h2=(h2load -n "$n" -c 1 -m 1 -H 'content-type: application/grpc' -H 'te: trailers' -d "$body")
  [[ -n $header ]] && h2+=(-H "$header")
  "${h2[@]}" "http://127.0.0.1:$port$path" >"$work/h2load.log" 2>&1 || true
  # A failed run stops its server too (this runs in a subshell, which the EXIT trap doesn't cover).
  grep -q " 0 failed, 0 errored" "$work/h2load.log" || {
    cat "$work/h2load.log" >&2
    kill -KILL "$pid" 2>/dev/null || true
    exit 1
  }
  kill -TERM "$pid"
  wait "$pid" || true
  awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

per_call() { # binary path body header tokens-file
  local a b
  a=$(run "$1" "$N1" "$2" "$3" "$4" "$5") && b=$(run "$1" "$N2" "$2" "$3" "$4" "$5") &&
    [[ -n $a && -n $b ]] || { echo "a run failed" >&2; exit 1; }
  echo $(((b - a) / (N2 - N1)))
}

for bin in "$@"; do
  tokens=
  if echo "$TOKEN" | "$bin" hash-token >/dev/null 2>&1; then
    tokens=$work/tokens.json
    printf '{"tokens": [{"subject": "all", "sha256": "%s", "folders": ["*"]}, {"subject": "one", "sha256": "%s", "folders": ["b1gdemo7f0lder2qk8vh"]}]}\n' \
      "$(echo "$TOKEN" | "$bin" hash-token)" "$(echo "$FOLDER_TOKEN" | "$bin" hash-token)" >"$tokens"
  fi
  for api in compute container; do
    if [[ $api == compute ]]; then path=/yandex.cloud.compute.v1.ImageService/Get; else path=/yandex.cloud.containerregistry.v1.ImageService/Get; fi
    cost=$(per_call "$bin" "$path" "$work/$api.req" "" "")
    printf '%s\t%s Get, auth off\t%s Ir/call\n' "$bin" "$api" "$cost"
    if [[ -n $tokens ]]; then
      cost=$(per_call "$bin" "$path" "$work/$api.req" "authorization: Bearer $TOKEN" "$tokens")
      printf '%s\t%s Get, token of every folder\t%s Ir/call\n' "$bin" "$api" "$cost"
      cost=$(per_call "$bin" "$path" "$work/$api.req" "authorization: Bearer $FOLDER_TOKEN" "$tokens")
      printf '%s\t%s Get, token of the image folder\t%s Ir/call\n' "$bin" "$api" "$cost"
    fi
  done
done
