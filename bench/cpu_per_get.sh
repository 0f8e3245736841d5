#!/usr/bin/env bash
# bench/cpu_per_get.sh: server CPU time per gRPC compute Get (demo catalog),
# for an A/B comparison of builds or flags. Each configuration is
# "label|binary|extra serve flags"; every round runs each one (in alternating
# order) on a fresh server: a warm-up of 2,000 calls, then N calls from h2load
# (8 connections x 16 streams), the server's utime+stime from /proc divided by N.
# Prints each round and the medians.
#
# Example: bench/cpu_per_get.sh "before|/tmp/before/image-service|" \
#            "after|target/release/image-service|" \
#            "otlp|target/release/image-service|--otlp-endpoint http://127.0.0.1:4317"
# Knobs: ROUNDS (5), N (100000). Needs h2load (Debian: nghttp2-client).
set -euo pipefail
rounds=${ROUNDS:-5}
n=${N:-100000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# GetImageRequest{image_id: "fd824k6uqk9cvi1ise4i"} in a gRPC frame.
printf '\x00\x00\x00\x00\x16\x0a\x14fd824k6uqk9cvi1ise4i' >"$work/get.req"
hz=$(getconf CLK_TCK)

cpu_us() { awk -v hz="$hz" '{printf "%d", ($14 + $15) * 1000000 / hz}' "/proc/$1/stat"; }
load() { # calls port
  h2load -n "$1" -c 8 -m 16 -H 'content-type: application/grpc' -H 'te: trailers' \
    -d "$work/get.req" "http://127.0.0.1:$2/yandex.cloud.compute.v1.ImageService/Get"
}
one() { # binary port flags...
  local bin=$1 port=$2
  shift 2
  "$bin" serve --grpc-listen "127.0.0.1:$port" --http-listen 127.0.0.1:0 --shutdown-delay 0s "$@" \
    >"$work/server-$port.log" 2>&1 &
  local pid=$!
  for _ in $(seq 200); do
    grep -q "serving gRPC" "$work/server-$port.log" 2>/dev/null && break
    sleep 0.05
  done
  load 2000 "$port" >/dev/null
  local before after out
  before=$(cpu_us "$pid")
  out=$(load "$n" "$port")
  after=$(cpu_us "$pid")
  kill -TERM "$pid"
  wait "$pid" || true
  grep -q "$n succeeded" <<<"$out" || { echo "$out" >&2; exit 1; }
  awk -v c=$((after - before)) -v n="$n" 'BEGIN {printf "%.2f", c / n}'
}

declare -A results
for round in $(seq "$rounds"); do
  line="round $round:"
  for ((i = 0; i < $#; i++)); do
    index=$((round % 2 ? i : $# - 1 - i))
    IFS='|' read -r label bin flags <<<"${@:index+1:1}"
    # shellcheck disable=SC2086 # the flags are words
    value=$(one "$bin" $((18200 + index)) $flags)
    results[$label]+="$value "
    line+=" $label=$value"
  done
  echo "$line µs/call"
done
for config in "$@"; do
  IFS='|' read -r label _ <<<"$config"
  # shellcheck disable=SC2086 # one value per word
  median=$(printf '%s\n' ${results[$label]} | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
  echo "$label: median $median µs/call (${results[$label]% })"
done
