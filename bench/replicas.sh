#!/usr/bin/env bash
# bench/replicas.sh: cached replicas (serve --database-url … --cache) on one
# PostgreSQL database, and the figures issue 19 asks for:
#  1. start-up of a cached replica from a database of BENCH_STARTUP_IMAGES rows
#     (launch → "serving gRPC": the catalog read in one snapshot, indexed);
#  2. compute Get, gRPC 8 conns × 16 streams, from the cached replica and from
#     the in-memory server on the same catalog, rounds alternating, ratio =
#     median of the per-round ratios (target ≥ 0.90), plus the uncached
#     PostgreSQL backend for context;
#  3. staleness: Updates on replica A, polled on B and C from the moment A
#     answered, p50 / p99 / max (target p99 < 100 ms), and read-your-writes on A;
#  4. write throughput with three replicas: a write-load (8 callers, a folder of
#     its own) on each replica at once, summed; and one replica alone.
#
# Usage: bench/replicas.sh           full run (1,000,000 rows; 5 rounds of 3 s; ~6 min)
#        bench/replicas.sh --smoke   tiny, dev build, 1 round of 1 s (for CI)
# Knobs: BENCH_STARTUP_IMAGES, BENCH_ROUNDS, BENCH_SECONDS, BENCH_LAG_SAMPLES,
# BENCH_PROFILE, BENCH_DIR, BENCH_DATABASE_URL (schema image_service_bench_replicas,
# dropped at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
case "${1:-}" in
  "") ;;
  --smoke) mode=smoke ;;
  -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac
if [[ $mode == smoke ]]; then
  : "${BENCH_PROFILE:=dev}" "${BENCH_STARTUP_IMAGES:=2000}" "${BENCH_ROUNDS:=1}" "${BENCH_SECONDS:=1}"
  : "${BENCH_LAG_SAMPLES:=50}"
else
  : "${BENCH_PROFILE:=release}" "${BENCH_STARTUP_IMAGES:=1000000}" "${BENCH_ROUNDS:=5}" "${BENCH_SECONDS:=3}"
  : "${BENCH_LAG_SAMPLES:=1000}"
fi
: "${BENCH_DIR:=target/bench-replicas}"
: "${BENCH_DATABASE_URL:=postgres://postgres@127.0.0.1:5432/test}"
readonly SCHEMA=image_service_bench_replicas

# shellcheck source=bench/lib.sh
source bench/lib.sh
need_tool h2load nghttp2-client
need_tool psql postgresql-client
need_tool curl curl

profile_dir=$([[ $BENCH_PROFILE == dev ]] && echo debug || echo "$BENCH_PROFILE")
log "building ($BENCH_PROFILE)"
cargo build --quiet --profile "$BENCH_PROFILE" --bin image-service
cargo build --quiet --profile "$BENCH_PROFILE" --example gen-catalog --example write-load --example replica-lag
bin=target/$profile_dir/image-service examples=target/$profile_dir/examples

work=$BENCH_DIR
rm -rf "$work" && mkdir -p "$work/logs"
pids=()
pg() { psql "$BENCH_DATABASE_URL" -qAt -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning; $1" >/dev/null; }
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pg "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" || true
}
trap cleanup EXIT
pg "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA" ||
  die "PostgreSQL at $BENCH_DATABASE_URL does not answer"
separator=$([[ $BENCH_DATABASE_URL == *\?* ]] && echo '&' || echo '?')
url="$BENCH_DATABASE_URL${separator}options=-c%20search_path%3D$SCHEMA"

server_pid= grpc_addr= http_addr=
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
value() { awk -F= -v k="$1" '$1 == k {print $2}' "$2"; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
fmt_ms() { awk -v x="$1" 'BEGIN {printf "%.1f", x / 1000}'; }

# ---------------------------------------------------------------- the database
log "catalog of $BENCH_STARTUP_IMAGES compute images, imported into PostgreSQL"
"$examples/gen-catalog" --compute "$BENCH_STARTUP_IMAGES" --container 0 --out "$work/catalog.json" \
  --frames "$work/frames" >"$work/catalog.env"
sample_id=$(value compute_sample_id "$work/catalog.env")
started=$(date +%s%N)
"$bin" import --database-url "$url" --database-statement-timeout 3600s "$work/catalog.json" \
  >"$work/logs/import.log" 2>&1 || die "import failed: $(tail -3 "$work/logs/import.log")"
import_ms=$((($(date +%s%N) - started) / 1000000))
psql "$url" -qAt -c "ANALYZE" >/dev/null

# ---------------------------------------------------------------- start-up
log "start-up of a cached replica from $BENCH_STARTUP_IMAGES rows"
started=$(date +%s%N)
start_serve cached --database-url "$url" --cache
startup_ms=$((($(date +%s%N) - started) / 1000000))
cached_pid=$server_pid cached_grpc=$grpc_addr cached_http=$http_addr
rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$cached_pid/status")
cpu_ms=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($14 + $15) * 1000 / hz}' "/proc/$cached_pid/stat")
log "serving after $startup_ms ms (CPU $cpu_ms ms), VmRSS $((rss_kb / 1024)) MiB"

# ---------------------------------------------------------------- Get: cached vs memory
start_serve memory --catalog "$work/catalog.json"
memory_pid=$server_pid memory_grpc=$grpc_addr memory_http=$http_addr
want=$(curl -fsS "http://$memory_http/compute/v1/images/$sample_id") || die "the memory server does not answer"
got=$(curl -fsS "http://$cached_http/compute/v1/images/$sample_id") || die "the cached replica does not answer"
[[ $got == "$want" ]] || die "the cached replica answers otherwise than the memory server: $got"
get_rps() { grpc_get_rps "$1" "$2" "$work/frames/compute-get.req"; }
: >"$work/get.tsv"
for round in $(seq "$BENCH_ROUNDS"); do
  # In turn first, so neither always runs on a warmer machine.
  if ((round % 2)); then
    memory=$(get_rps "memory-$round" "$memory_grpc") cached=$(get_rps "cached-$round" "$cached_grpc")
  else
    cached=$(get_rps "cached-$round" "$cached_grpc") memory=$(get_rps "memory-$round" "$memory_grpc")
  fi
  printf '%s\t%s\t%s\n' "$memory" "$cached" "$(awk -v c="$cached" -v m="$memory" 'BEGIN {printf "%.3f", c / m}')" >>"$work/get.tsv"
  log "round $round: memory $memory req/s, cached replica $cached req/s"
done
stop "$memory_pid"
start_serve uncached --database-url "$url"
uncached=$(get_rps uncached "$grpc_addr")
stop "$server_pid"
memory_rps=$(cut -f1 "$work/get.tsv" | median)
cached_rps=$(cut -f2 "$work/get.tsv" | median)
get_ratio=$(cut -f3 "$work/get.tsv" | median)

# ---------------------------------------------------------------- staleness
start_serve replica-b --database-url "$url" --cache
b_pid=$server_pid b_grpc=$grpc_addr b_http=$http_addr
start_serve replica-c --database-url "$url" --cache
c_pid=$server_pid c_grpc=$grpc_addr c_http=$http_addr
log "staleness: $BENCH_LAG_SAMPLES Updates on A, each polled on B and C"
"$examples/replica-lag" --writer "$cached_grpc" --readers "$b_grpc,$c_grpc" --samples "$BENCH_LAG_SAMPLES" \
  >"$work/lag.txt" || die "replica-lag failed"
log "$(tr '\n' ' ' <"$work/lag.txt")"
(($(value stale_on_writer "$work/lag.txt") == 0)) || die "read-your-writes broken on the writer ($work/lag.txt)"

# ---------------------------------------------------------------- write throughput
log "write throughput: one replica alone"
"$examples/write-load" --addr "$cached_grpc" --seconds "$BENCH_SECONDS" --concurrency 8 --folder b1gbenchalone \
  >"$work/writes-one.txt" || die "write-load failed"
(($(value errors "$work/writes-one.txt") == 0)) || die "Creates failed ($work/writes-one.txt)"
log "write throughput: three replicas at once"
loaders=()
for i in 0 1 2; do
  addr=$([[ $i == 0 ]] && echo "$cached_grpc" || { [[ $i == 1 ]] && echo "$b_grpc" || echo "$c_grpc"; })
  "$examples/write-load" --addr "$addr" --seconds "$BENCH_SECONDS" --concurrency 8 --folder "b1gbenchthree$i" \
    >"$work/writes-three-$i.txt" &
  loaders+=($!)
done
for loader in "${loaders[@]}"; do wait "$loader" || die "write-load failed"; done
three_total=0
for i in 0 1 2; do
  (($(value errors "$work/writes-three-$i.txt") == 0)) || die "Creates failed ($work/writes-three-$i.txt)"
  three_total=$((three_total + $(value per_second "$work/writes-three-$i.txt")))
done
three_p99=$(for i in 0 1 2; do value p99_us "$work/writes-three-$i.txt"; done | sort -n | tail -1)
# Every replica ends up listing the same Creates.
sleep 0.5
page=compute/v1/images?folderId=b1gbenchthree1\&pageSize=1000
listed=$(curl -fsS "http://$cached_http/$page") || die "List failed"
grep -q '"id"' <<<"$listed" || die "no Creates listed"
for addr in "$b_http" "$c_http"; do
  [[ $(curl -fsS "http://$addr/$page") == "$listed" ]] || die "replica $addr lists other Creates than A"
done
stop "$b_pid"
stop "$c_pid"
stop "$cached_pid"

verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {ok = (op == ">=" ? v >= t : v <= t); print (ok ? "met" : "**missed**")}'; }
p99_us=$(value p99_us "$work/lag.txt")
{
  echo
  echo "image-service cached replicas ($mode): $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, $BENCH_STARTUP_IMAGES rows (import $(fmt_ms "$import_ms") s)"
  echo
  echo "| figure | result | target | result |"
  echo "|---|---|---|---|"
  echo "| cached replica start-up from $BENCH_STARTUP_IMAGES rows (launch → serving; CPU of all threads) | $(fmt_ms "$startup_ms") s (CPU $(fmt_ms "$cpu_ms") s), VmRSS $((rss_kb / 1024)) MiB | | - |"
  echo "| compute Get, gRPC 8 × 16: cached replica / in-memory server (median of $BENCH_ROUNDS alternating rounds of $BENCH_SECONDS s) | $cached_rps / $memory_rps req/s, ratio $get_ratio | ≥ 0.90 | $(verdict "$get_ratio" '>=' 0.90) |"
  echo "| compute Get, gRPC 8 × 16, PostgreSQL without --cache (one round, for context) | $uncached req/s | | - |"
  echo "| staleness, write acknowledged on A → visible on B and C ($(value samples "$work/lag.txt") samples): p50 / p99 / max | $(fmt_ms "$(value p50_us "$work/lag.txt")") / $(fmt_ms "$p99_us") / $(fmt_ms "$(value max_us "$work/lag.txt")") ms | p99 < 100 ms | $(verdict "$p99_us" '<=' 100000) |"
  echo "| read-your-writes on A (Get right after the Update's answer shows it) | $(value stale_on_writer "$work/lag.txt") stale of $BENCH_LAG_SAMPLES | 0 | $(verdict "$(value stale_on_writer "$work/lag.txt")" '<=' 0) |"
  echo "| compute Create throughput, one cached replica, 8 callers | $(value per_second "$work/writes-one.txt") Creates/s; p99 $(fmt_ms "$(value p99_us "$work/writes-one.txt")") ms | | - |"
  echo "| compute Create throughput, three cached replicas at once, 8 callers each (own folders) | $three_total Creates/s in all; worst p99 $(fmt_ms "$three_p99") ms | | - |"
  echo
} | tee "$work/results.md"
