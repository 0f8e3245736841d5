#!/usr/bin/env bash
# bench/call_cost.sh: instructions executed per compute Get, counted by callgrind
# (exact and repeatable, unlike timings on a shared 2-core machine), for
# image-service over gRPC and over REST and for the two ceiling servers of
# bench/run.sh answering the same image. The instruction ratio server/ceiling
# is the noise-free counterpart of run.sh's throughput ratio.
#
# Usage: bench/call_cost.sh [BINARY...]   (default: target/release/image-service)
# Builds the ceilings and gen-catalog (release), writes a 1,000-image catalog and
# runs every server under callgrind twice, answering N1 then N2 calls (h2load,
# one connection, one stream at a time): (Ir(N2) - Ir(N1)) / (N2 - N1) is the
# cost of one call, start-up and shutdown cancelling out.
# Knobs: CALL_COST_N1 (300), CALL_COST_N2 (1300); CALL_COST_EXAMPLES, a directory
# with gen-catalog and the ceilings already built (then nothing is built).
set -euo pipefail
cd "$(dirname "$0")/.."

readonly N1=${CALL_COST_N1:-300} N2=${CALL_COST_N2:-1300}
bins=("$@")
((${#bins[@]})) || bins=(target/release/image-service)
examples=${CALL_COST_EXAMPLES:-}
if [[ -z $examples ]]; then
  cargo build --quiet --release --example gen-catalog --example ceiling-grpc --example ceiling-rest
  examples=target/release/examples
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$examples/gen-catalog" --compute 1000 --out "$work/catalog.json" --frames "$work/frames" >"$work/catalog.env"
index=$(awk -F= '$1 == "compute_sample_index" {print $2}' "$work/catalog.env")
id=$(awk -F= '$1 == "compute_sample_id" {print $2}' "$work/catalog.env")
readonly GRPC_PATH=/yandex.cloud.compute.v1.ImageService/Get REST_PATH=/compute/v1/images/$id

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Ir of one run of COMMAND (which must print READY once listening on PORT)
# answering N calls of KIND (grpc or rest).
run() { # n kind port ready command...
  local n=$1 kind=$2 port=$3 ready=$4 out pid
  shift 4
  out=$work/callgrind.$RANDOM
  valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >"$out.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    grep -q "$ready" "$out.log" && break
    sleep 0.1
  done
  local h2
  if [[ $kind == grpc ]]; then
    h2=(h2load -n "$n" -c 1 -m 1 -H 'content-type: application/grpc' -H 'te: trailers'
      -d "$work/frames/compute-get.req" "http://127.0.0.1:$port$GRPC_PATH")
  else
    h2=(h2load --h1 -n "$n" -c 1 "http://127.0.0.1:$port$REST_PATH")
  fi
  "${h2[@]}" >"$work/h2load.log" 2>&1 || true
  # A failed run stops its server too (this runs in a subshell, which the EXIT trap doesn't cover).
  grep -q "$n succeeded, 0 failed, 0 errored" "$work/h2load.log" || {
    cat "$work/h2load.log" >&2
    kill -KILL "$pid" 2>/dev/null || true
    exit 1
  }
  kill -TERM "$pid"
  wait "$pid" || true
  awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

per_call() { # kind ready command-with-PORT...
  local kind=$1 ready=$2 a b port
  shift 2
  port=$(free_port)
  a=$(run "$N1" "$kind" "$port" "$ready" "${@//PORT/$port}") &&
    b=$(run "$N2" "$kind" "$port" "$ready" "${@//PORT/$port}") &&
    [[ -n $a && -n $b ]] || { echo "a run failed" >&2; exit 1; }
  echo $(((b - a) / (N2 - N1)))
}

ceiling_grpc=$(per_call grpc 'listening on' "$examples/ceiling-grpc" --listen 127.0.0.1:PORT --compute-index "$index")
ceiling_rest=$(per_call rest 'listening on' "$examples/ceiling-rest" --listen 127.0.0.1:PORT --compute-index "$index")
printf '%-40s %-22s %9s Ir/call\n' ceiling-grpc "compute Get, gRPC" "$ceiling_grpc"
printf '%-40s %-22s %9s Ir/call\n' ceiling-rest "compute Get, REST" "$ceiling_rest"
for bin in "${bins[@]}"; do
  serve=("$bin" serve --catalog "$work/catalog.json" --shutdown-delay 0s)
  grpc=$(per_call grpc 'serving gRPC' "${serve[@]}" --grpc-listen 127.0.0.1:PORT --http-listen 127.0.0.1:0)
  rest=$(per_call rest 'serving gRPC' "${serve[@]}" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:PORT)
  printf '%-40s %-22s %9s Ir/call  (%s x ceiling)\n' "$bin" "compute Get, gRPC" "$grpc" \
    "$(awk -v a="$grpc" -v b="$ceiling_grpc" 'BEGIN {printf "%.2f", a / b}')"
  printf '%-40s %-22s %9s Ir/call  (%s x ceiling)\n' "$bin" "compute Get, REST" "$rest" \
    "$(awk -v a="$rest" -v b="$ceiling_rest" 'BEGIN {printf "%.2f", a / b}')"
done
