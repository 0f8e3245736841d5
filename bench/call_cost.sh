#!/usr/bin/env bash
# bench/call_cost.sh: instructions executed per compute Get, counted by callgrind
# (exact and repeatable, unlike timings on a shared 2-core machine), for
# image-service over gRPC and over REST and for the two ceiling servers of
# bench/run.sh answering the same image. The instruction ratio server/ceiling
# is the noise-free counterpart of run.sh's throughput ratio.
#
# Usage: bench/call_cost.sh [BINARY...]   (default: target/release/image-service)
# Builds the ceilings and gen-catalog (release), writes a 1,000-image catalog and
# runs every server under callgrind twice, answering N1 then N2 calls
# (bench/callgrind.sh).
# Knobs: CALL_COST_N1 (300), CALL_COST_N2 (1300); CALL_COST_EXAMPLES, a directory
# with gen-catalog and the ceilings already built (then nothing is built);
# CALL_COST_DATABASE_URL: also each binary as a cached replica (serve
# --database-url … --cache) of that catalog imported into PostgreSQL (schema
# image_service_call_cost, dropped at the end).
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
callgrind_work=$(mktemp -d)
database_url=${CALL_COST_DATABASE_URL:-}
pg() { psql "$database_url" -qAt -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning; $1" >/dev/null; }
cleanup() {
  rm -rf "$callgrind_work"
  [[ -z $database_url ]] || pg "DROP SCHEMA IF EXISTS image_service_call_cost CASCADE" || true
}
trap cleanup EXIT
work=$callgrind_work
# shellcheck source=bench/callgrind.sh
. bench/callgrind.sh

"$examples/gen-catalog" --compute 1000 --out "$work/catalog.json" --frames "$work/frames" >"$work/catalog.env"
index=$(awk -F= '$1 == "compute_sample_index" {print $2}' "$work/catalog.env")
id=$(awk -F= '$1 == "compute_sample_id" {print $2}' "$work/catalog.env")
readonly GRPC_PATH=/yandex.cloud.compute.v1.ImageService/Get REST_PATH=/compute/v1/images/$id

grpc_load=(-c 1 -m 1 -H 'content-type: application/grpc' -H 'te: trailers'
  -d "$work/frames/compute-get.req" "http://127.0.0.1:PORT$GRPC_PATH")
rest_load=(--h1 -c 1 "http://127.0.0.1:PORT$REST_PATH")
per_call() { # grpc|rest ready command...
  local kind=$1
  shift
  if [[ $kind == grpc ]]; then callgrind_load=("${grpc_load[@]}"); else callgrind_load=("${rest_load[@]}"); fi
  callgrind_per_call "$@"
}

ceiling_grpc=$(per_call grpc 'listening on' "$examples/ceiling-grpc" --listen 127.0.0.1:PORT --compute-index "$index")
ceiling_rest=$(per_call rest 'listening on' "$examples/ceiling-rest" --listen 127.0.0.1:PORT --compute-index "$index")
printf '%-40s %-22s %9s Ir/call\n' ceiling-grpc "compute Get, gRPC" "$ceiling_grpc"
printf '%-40s %-22s %9s Ir/call\n' ceiling-rest "compute Get, REST" "$ceiling_rest"
if [[ -n $database_url ]]; then
  pg "DROP SCHEMA IF EXISTS image_service_call_cost CASCADE; CREATE SCHEMA image_service_call_cost"
  separator=$([[ $database_url == *\?* ]] && echo '&' || echo '?')
  cached_url="$database_url${separator}options=-c%20search_path%3Dimage_service_call_cost"
  "${bins[0]}" import --database-url "$cached_url" "$work/catalog.json" >/dev/null 2>&1
fi
for bin in "${bins[@]}"; do
  if [[ -n $database_url ]]; then
    # No poll during the runs: the longer run must not count more of them.
    cached=("$bin" serve --database-url "$cached_url" --cache --cache-poll-interval 1h --shutdown-delay 0s)
    grpc=$(per_call grpc 'serving gRPC' "${cached[@]}" --grpc-listen 127.0.0.1:PORT --http-listen 127.0.0.1:0)
    printf '%-40s %-22s %9s Ir/call  (%s x ceiling)\n' "$bin --cache" "compute Get, gRPC" "$grpc" \
      "$(awk -v a="$grpc" -v b="$ceiling_grpc" 'BEGIN {printf "%.2f", a / b}')"
  fi
  serve=("$bin" serve --catalog "$work/catalog.json" --shutdown-delay 0s)
  grpc=$(per_call grpc 'serving gRPC' "${serve[@]}" --grpc-listen 127.0.0.1:PORT --http-listen 127.0.0.1:0)
  rest=$(per_call rest 'serving gRPC' "${serve[@]}" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:PORT)
  printf '%-40s %-22s %9s Ir/call  (%s x ceiling)\n' "$bin" "compute Get, gRPC" "$grpc" \
    "$(awk -v a="$grpc" -v b="$ceiling_grpc" 'BEGIN {printf "%.2f", a / b}')"
  printf '%-40s %-22s %9s Ir/call  (%s x ceiling)\n' "$bin" "compute Get, REST" "$rest" \
    "$(awk -v a="$rest" -v b="$ceiling_rest" 'BEGIN {printf "%.2f", a / b}')"
done
