#!/usr/bin/env bash
# bench/auth_cost.sh: instructions the server executes per gRPC Get, counted by
# callgrind (exact, unlike timings on a shared machine), with authentication off
# and on (a token of every folder, and a token of one folder, which makes the
# folder check read the image's folder), and, for a binary with roles, a compute
# Get allowed by a binding alone: a token without roles bound to the image, and
# no token at all for an image bound to allUsers (the bindings are set through
# the REST face, then kept in a --data-dir for the measured runs).
#
# Usage: bench/auth_cost.sh BINARY [BINARY...]   (e.g. target/release/image-service)
# Each binary serves the demo catalog under callgrind twice, answering N1 then N2
# Gets (bench/callgrind.sh). A binary without
# `hash-token` is measured with authentication off only.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly N1=${AUTH_COST_N1:-300} N2=${AUTH_COST_N2:-1300}
readonly TOKEN=bench-token.all FOLDER_TOKEN=bench-token.one
readonly OWNER_TOKEN=bench-token.owner BOUND_TOKEN=bench-token.bound
readonly IMAGE=fd8o2pjpr9dfpl308ukq CONTAINER_IMAGE=crpphk31u48ts5plqaqo
callgrind_work=$(mktemp -d)
trap 'rm -rf "$callgrind_work"' EXIT
work=$callgrind_work
# shellcheck source=bench/callgrind.sh
. bench/callgrind.sh

# A gRPC frame holding GetImageRequest{image_id} (field 1, 20 bytes).
frame() { printf '\x00\x00\x00\x00\x16\x0a\x14%s' "$1" >"$2"; }
frame "$IMAGE" "$work/compute.req"
frame "$CONTAINER_IMAGE" "$work/container.req"

# Ir per Get of PATH with body FILE, with HEADER (may be empty) and the
# server given TOKENS-FILE (may be empty).
per_call() { # binary path body header tokens-file [data-dir]
  local args=(serve --grpc-listen 127.0.0.1:PORT --http-listen 127.0.0.1:0 --shutdown-delay 0s)
  [[ -n $5 ]] && args+=(--auth-tokens "$5")
  [[ -n ${6:-} ]] && args+=(--data-dir "$6")
  callgrind_load=(-c 1 -m 1 -H 'content-type: application/grpc' -H 'te: trailers' -d "$3")
  [[ -n $4 ]] && callgrind_load+=(-H "$4")
  callgrind_load+=("http://127.0.0.1:PORT$2")
  callgrind_per_call 'serving gRPC and REST' "$1" "${args[@]}"
}

# Binds IMAGE to the bound token's subject and to allUsers in a fresh
# $work/data, with BINARY serving it; false for a binary without roles.
bind_image() { # binary
  local bin=$1 port pid ok=0
  printf '{"tokens": [{"subject": "owner", "sha256": "%s", "roles": {"*": ["admin"]}}, {"subject": "bound", "sha256": "%s"}]}\n' \
    "$(echo "$OWNER_TOKEN" | "$bin" hash-token)" "$(echo "$BOUND_TOKEN" | "$bin" hash-token)" >"$work/roles.json"
  rm -rf "$work/data" && mkdir -p "$work/data"
  port=$(free_port)
  "$bin" serve --grpc-listen 127.0.0.1:0 --http-listen "127.0.0.1:$port" --shutdown-delay 0s \
    --auth-tokens "$work/roles.json" --data-dir "$work/data" >"$work/bind.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    grep -q 'serving gRPC and REST' "$work/bind.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if curl -sf -H "authorization: Bearer $OWNER_TOKEN" -d '{"accessBindings": [
      {"roleId": "compute.images.user", "subject": {"id": "bound", "type": "userAccount"}},
      {"roleId": "compute.images.user", "subject": {"id": "allUsers", "type": "system"}}]}' \
      "http://127.0.0.1:$port/compute/v1/images/$IMAGE:setAccessBindings" >/dev/null 2>&1; then
    ok=1
  fi
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [[ $ok == 1 ]]
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
  if [[ -n $tokens ]] && bind_image "$bin"; then
    path=/yandex.cloud.compute.v1.ImageService/Get
    cost=$(per_call "$bin" "$path" "$work/compute.req" "authorization: Bearer $BOUND_TOKEN" "$work/roles.json" "$work/data")
    printf '%s\t%s Get, token bound to the image only\t%s Ir/call\n' "$bin" compute "$cost"
    cost=$(per_call "$bin" "$path" "$work/compute.req" "" "$work/roles.json" "$work/data")
    printf '%s\t%s Get, no token, image bound to allUsers\t%s Ir/call\n' "$bin" compute "$cost"
  fi
done
