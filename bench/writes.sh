#!/usr/bin/env bash
# bench/writes.sh: the write API's figures. Write throughput (compute Creates
# acknowledged per second, 8 concurrent callers) on each backend: in memory,
# --data-dir (redb, every commit fsynced) and PostgreSQL; and compute Get
# throughput over gRPC alone and with 500 Creates per second running beside
# it, rounds alternating, as a ratio (the writes must not slow the reads).
#
# Usage: bench/writes.sh           full run (100,000-image catalog, 5 rounds of 3 s)
#        bench/writes.sh --smoke   tiny, 1 s runs, 1 round, dev build (for CI)
# Knobs: BENCH_IMAGES, BENCH_ROUNDS, BENCH_SECONDS, BENCH_WRITE_RATE (500),
# BENCH_PROFILE, BENCH_DIR, BENCH_DATABASE_URL ("none" leaves PostgreSQL out).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
case "${1:-}" in
  "") ;;
  --smoke) mode=smoke ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac
if [[ $mode == smoke ]]; then
  : "${BENCH_PROFILE:=dev}" "${BENCH_IMAGES:=1000}" "${BENCH_ROUNDS:=1}" "${BENCH_SECONDS:=1}"
else
  : "${BENCH_PROFILE:=release}" "${BENCH_IMAGES:=100000}" "${BENCH_ROUNDS:=5}" "${BENCH_SECONDS:=3}"
fi
: "${BENCH_WRITE_RATE:=500}" "${BENCH_DIR:=target/bench-writes}"
: "${BENCH_DATABASE_URL:=postgres://postgres@127.0.0.1:5432/test}"
readonly SCHEMA=image_service_bench_writes

# shellcheck source=bench/lib.sh
source bench/lib.sh
need_tool h2load nghttp2-client

profile_args=()
[[ $BENCH_PROFILE == release ]] && profile_args=(--release)
log "building ($BENCH_PROFILE)"
cargo build --quiet "${profile_args[@]}" --bin image-service --example gen-catalog --example write-load
out=target/$([[ $BENCH_PROFILE == release ]] && echo release || echo debug)
bin=$out/image-service examples=$out/examples

work=$BENCH_DIR
rm -rf "$work" && mkdir -p "$work/logs"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

server_addr=
start() { # name serve-args...
  start_serve "$@"
  server_addr=$grpc_addr
}
stop() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
value() { awk -F= -v k="$1" '$1 == k {print $2}' "$2"; }

# ---------------------------------------------------------------- write throughput
rows=()
write_row() { # label serve-args...
  local label=$1 name
  shift
  name=$(tr -c 'a-z0-9\n' '-' <<<"${label,,}")
  start "$name" "$@"
  "$examples/write-load" --addr "$server_addr" --seconds "$BENCH_SECONDS" --concurrency 8 >"$work/$name.txt" ||
    die "write-load failed against $label"
  stop
  (($(value errors "$work/$name.txt") == 0)) || die "$label: some Creates failed ($work/$name.txt)"
  rows+=("| compute Create throughput, $label, 8 concurrent callers | $(value per_second "$work/$name.txt") Creates/s; p50 / p99 $(value p50_us "$work/$name.txt") / $(value p99_us "$work/$name.txt") µs |")
  log "$label: $(value per_second "$work/$name.txt") Creates/s"
}
write_row "in memory"
write_row "--data-dir (redb, fsync per commit)" --data-dir "$work/data"
if [[ $BENCH_DATABASE_URL != none ]]; then
  psql "$BENCH_DATABASE_URL" -qAt -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA" >/dev/null ||
    die "PostgreSQL at $BENCH_DATABASE_URL does not answer (or set BENCH_DATABASE_URL=none)"
  trap 'cleanup; psql "$BENCH_DATABASE_URL" -qAt -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null || true' EXIT
  separator=$([[ $BENCH_DATABASE_URL == *\?* ]] && echo '&' || echo '?')
  write_row "PostgreSQL (one transaction per write)" --database-url "$BENCH_DATABASE_URL${separator}options=-c%20search_path%3D$SCHEMA"
fi

# ---------------------------------------------------------------- Get beside writes
log "catalog of $BENCH_IMAGES compute images"
"$examples/gen-catalog" --compute "$BENCH_IMAGES" --out "$work/catalog.json" --frames "$work/frames" >"$work/catalog.env"
start get-beside-writes --catalog "$work/catalog.json"
get_rps() { grpc_get_rps "$1" "$server_addr" "$work/frames/compute-get.req"; }
: >"$work/rounds.tsv"
for round in $(seq "$BENCH_ROUNDS"); do
  alone=$(get_rps "alone-$round")
  "$examples/write-load" --addr "$server_addr" --seconds "$BENCH_SECONDS" --concurrency 4 --rate "$BENCH_WRITE_RATE" \
    >"$work/beside-$round.txt" &
  writer=$!
  beside=$(get_rps "beside-$round")
  wait "$writer" || die "write-load failed beside the Gets"
  (($(value errors "$work/beside-$round.txt") == 0)) || die "Creates failed beside the Gets ($work/beside-$round.txt)"
  printf '%s\t%s\t%s\n' "$alone" "$beside" "$(value per_second "$work/beside-$round.txt")" >>"$work/rounds.tsv"
  log "round $round: Get alone $alone req/s, beside $(value per_second "$work/beside-$round.txt") Creates/s: $beside req/s"
done
stop
median() { cut -f"$1" "$work/rounds.tsv" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ratio=$(awk -F'\t' '{print $2 / $1}' "$work/rounds.tsv" | sort -n | awk '{v[NR] = $1} END {printf "%.2f", v[int((NR + 1) / 2)]}')
rows+=("| compute Get, gRPC, 8 × 16, $BENCH_IMAGES-image catalog: alone / with $BENCH_WRITE_RATE Creates/s beside (achieved $(median 3)/s) | $(median 1) / $(median 2) req/s (ratio $ratio; target ≥ 0.90) |")

{
  echo
  echo "image-service write benchmark ($mode): $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores"
  echo
  echo "| figure | result |"
  echo "|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
} | tee "$work/results.md"
