#!/usr/bin/env bash
# The cat_* and big_* variables come from gen-catalog's output (read_env).
# shellcheck disable=SC2154
# bench/run.sh: builds image-service and the benchmark tools, generates
# catalogs, starts the server beside two "ceiling" servers (the least a tonic /
# hyper server can do to answer the same Get with the same bytes), drives load
# from h2load on loopback and prints a markdown table.
#
# Every throughput figure is a ratio to a ceiling measured in the same run,
# alternating ceiling and server (A B A B ...) and taking medians, because the
# machine is small and shared: absolute numbers move with whatever else runs,
# the ratio much less.
#
# Usage: bench/run.sh            full run (100,000 images, 9 rounds of 3 s; ~10 min)
#        bench/run.sh --smoke    tiny catalogs, 1 s per run, 1 round (for CI)
# Knobs (environment): BENCH_IMAGES, BENCH_CONTAINER_IMAGES, BENCH_LAYERS,
# BENCH_STARTUP_IMAGES, BENCH_ROUNDS, BENCH_SECONDS, BENCH_WARMUP_SECONDS,
# BENCH_STARTUP_RUNS, BENCH_PROFILE (release|dev), BENCH_DIR, BENCH_DATABASE_URL
# (the PostgreSQL server for the PostgreSQL rows, default
# postgres://postgres@127.0.0.1:5432/test; the rows use a schema of their own,
# image_service_bench, dropped at the end; "none" leaves the rows out).
#
# Exits non-zero when any step fails (a server doesn't start, a request fails,
# a sampled answer is not the expected image). A missed performance target is
# reported in the table, not as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
case "${1:-}" in
  "") ;;
  --smoke) mode=smoke ;;
  -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

if [[ $mode == smoke ]]; then
  # The dev profile: CI has just built it for the tests, and smoke is about the
  # script and the tools working, not about the numbers.
  : "${BENCH_PROFILE:=dev}" "${BENCH_IMAGES:=1000}" "${BENCH_CONTAINER_IMAGES:=100}"
  : "${BENCH_STARTUP_IMAGES:=1000}" "${BENCH_ROUNDS:=1}" "${BENCH_SECONDS:=1}"
  : "${BENCH_WARMUP_SECONDS:=0}" "${BENCH_STARTUP_RUNS:=1}"
else
  : "${BENCH_PROFILE:=release}" "${BENCH_IMAGES:=100000}" "${BENCH_CONTAINER_IMAGES:=100000}"
  # Many short rounds rather than a few long ones: another job on the machine
  # spoils a round or two, and the median of the per-round ratios shrugs it off.
  # No warm-up: nothing in a Rust server needs warming, and without one the
  # server's CPU time divides exactly by the requests h2load counted.
  : "${BENCH_STARTUP_IMAGES:=1000000}" "${BENCH_ROUNDS:=9}" "${BENCH_SECONDS:=3}"
  : "${BENCH_WARMUP_SECONDS:=0}" "${BENCH_STARTUP_RUNS:=3}"
fi
: "${BENCH_LAYERS:=50}" "${BENCH_DIR:=target/bench}"
: "${BENCH_DATABASE_URL:=postgres://postgres@127.0.0.1:5432/test}"

# The shape of the load: 8 connections x 16 streams for gRPC, 8 HTTP/1.1
# keep-alive connections for REST.
readonly GRPC_CONNS=8 GRPC_STREAMS=16 REST_CONNS=8
# Half-load pacing: h2load --rps ticks every 10 ms per connection, so 10
# connections whose starts are 1 ms apart (-r 1 --rate-period 1ms) give one
# small burst per millisecond instead of one big burst per 10 ms.
readonly HALF_CONNS=10
readonly COMPUTE_GET=/yandex.cloud.compute.v1.ImageService/Get
readonly CONTAINER_GET=/yandex.cloud.containerregistry.v1.ImageService/Get
readonly COMPUTE_LIST=/yandex.cloud.compute.v1.ImageService/List
readonly COMPUTE_LATEST=/yandex.cloud.compute.v1.ImageService/GetLatestByFamily
readonly BENCH_SCHEMA=image_service_bench

# shellcheck source=bench/lib.sh
source bench/lib.sh

# ---------------------------------------------------------------- tools
# h2load drives the load; curl samples single answers with their trailers.
need_tool h2load nghttp2-client
need_tool curl curl
need_tool valgrind valgrind
[[ $BENCH_DATABASE_URL == none ]] || need_tool psql postgresql-client

# ---------------------------------------------------------------- build
profile_dir=$([[ $BENCH_PROFILE == dev ]] && echo debug || echo "$BENCH_PROFILE")
log "building ($BENCH_PROFILE profile)"
# The server is built on its own so its dependency features are exactly those of
# a plain `cargo build`; the examples pull in dev-dependencies.
cargo build --quiet --profile "$BENCH_PROFILE" --bin image-service
cargo build --quiet --profile "$BENCH_PROFILE" --example gen-catalog --example ceiling-grpc --example ceiling-rest
bin=target/$profile_dir/image-service
examples=target/$profile_dir/examples

work=$BENCH_DIR
rm -rf "$work"
mkdir -p "$work/logs" "$work/frames"
rounds_tsv=$work/rounds.tsv
: >"$rounds_tsv"

# ---------------------------------------------------------------- processes
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until FILE has a line matching REGEX (a readiness line a server
# prints once listening), failing if PID dies first or TIMEOUT seconds pass.
wait_for_line() { # pid file regex timeout
  local pid=$1 file=$2 regex=$3 deadline=$((SECONDS + $4))
  until grep -Eq "$regex" "$file" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || die "process $pid exited before it was ready; its log ($file):$(printf '\n'; tail -5 "$file")"
    ((SECONDS < deadline)) || die "no '$regex' in $file after $4 s"
    sleep 0.01
  done
}

# Waits until something accepts TCP connections on PORT.
wait_for_port() { # pid port timeout
  local pid=$1 port=$2 deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || die "process $pid exited before listening on $port"
    ((SECONDS < deadline)) || die "nothing listens on port $port after $3 s"
    sleep 0.01
  done
}

# A port nothing listens on now. Only for the REST listener, whose bound
# address we can't read back; everything else binds port 0 and reports it.
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  die "no free port found"
}

# Starts image-service on CATALOG; sets server_pid, server_grpc and server_log.
start_server() { # catalog name [extra serve args...]
  local catalog=$1 name=$2
  shift 2
  server_log=$work/logs/$name.log
  # JSON logs: the bound address is one field, no colour codes to strip.
  "$bin" serve --catalog "$catalog" --grpc-listen 127.0.0.1:0 --log-format json "${shutdown_args[@]}" "$@" >"$server_log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  # "serving gRPC", or "serving gRPC and REST" when the server has a REST face.
  wait_for_line "$server_pid" "$server_log" '"serving gRPC' 300
  server_grpc=$(grep -o '"grpc":"[^"]*"' "$server_log" | head -1 | cut -d'"' -f4)
}

stop_process() { # pid
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# ---------------------------------------------------------------- catalogs
# key=value lines from gen-catalog, read into variables prefixed with $2.
read_env() { # file prefix
  local key value
  while IFS='=' read -r key value; do
    [[ $key =~ ^[a-z_0-9]+$ ]] && printf -v "$2$key" '%s' "$value"
  done <"$1"
}

log "generating catalogs: $BENCH_IMAGES compute + $BENCH_CONTAINER_IMAGES container images ($BENCH_LAYERS layers); $BENCH_STARTUP_IMAGES compute for start-up"
"$examples/gen-catalog" --compute "$BENCH_IMAGES" --container "$BENCH_CONTAINER_IMAGES" \
  --layers "$BENCH_LAYERS" --out "$work/catalog.json" --frames "$work/frames" >"$work/catalog.env"
read_env "$work/catalog.env" cat_
"$examples/gen-catalog" --compute "$BENCH_STARTUP_IMAGES" --container 0 \
  --out "$work/catalog-startup.json" --frames "$work/frames-big" >"$work/catalog-startup.env"
read_env "$work/catalog-startup.env" big_
frames=$work/frames

# ---------------------------------------------------------------- servers
log "starting image-service, ceiling-grpc and ceiling-rest"
serve_help=$("$bin" serve --help)
# A server with a shutdown delay (time for a load balancer to notice) would
# hold each stop for it; nothing balances here, so stop at once.
shutdown_args=()
if grep -q -- --shutdown-delay <<<"$serve_help"; then
  shutdown_args=(--shutdown-delay 0s)
fi
rest_face=no
rest_args=()
if grep -q -- --http-listen <<<"$serve_help"; then
  rest_face=yes
  rest_port=$(free_port)
  rest_args=(--http-listen "127.0.0.1:$rest_port")
fi
start_server "$work/catalog.json" server "${rest_args[@]}"
app_pid=$server_pid app_grpc=$server_grpc
[[ $rest_face == yes ]] && wait_for_port "$app_pid" "$rest_port" 30

"$examples/ceiling-grpc" --listen 127.0.0.1:0 --compute-index "$cat_compute_sample_index" \
  --container-index "$cat_container_sample_index" --layers "$BENCH_LAYERS" >"$work/logs/ceiling-grpc.log" 2>&1 &
ceiling_grpc_pid=$!
pids+=("$ceiling_grpc_pid")
"$examples/ceiling-rest" --listen 127.0.0.1:0 --compute-index "$cat_compute_sample_index" \
  >"$work/logs/ceiling-rest.log" 2>&1 &
ceiling_rest_pid=$!
pids+=("$ceiling_rest_pid")
wait_for_line "$ceiling_grpc_pid" "$work/logs/ceiling-grpc.log" 'listening on' 30
wait_for_line "$ceiling_rest_pid" "$work/logs/ceiling-rest.log" 'listening on' 30
ceiling_grpc=$(awk '/listening on/ {print $NF; exit}' "$work/logs/ceiling-grpc.log")
ceiling_rest=$(awk '/listening on/ {print $NF; exit}' "$work/logs/ceiling-rest.log")

# ---------------------------------------------------------------- checks
# h2load only sees HTTP status 200, and a gRPC error is a 200 too, so each
# target's answer to the very request body h2load sends is checked once here:
# grpc-status 0 in the trailers and the body byte for byte the expected frame.
# The request is the same every time, so the answer under load is this one.
check_grpc() { # addr path request expected-response label
  local out=$work/logs/check-$5
  curl -sS --http2-prior-knowledge --max-time 10 -H 'content-type: application/grpc' -H 'te: trailers' \
    --data-binary "@$3" -D "$out.headers" -o "$out.body" "http://$1$2" ||
    die "$5: the gRPC request failed"
  grep -q '^HTTP/2 200' "$out.headers" || die "$5: HTTP status is not 200: $(head -1 "$out.headers")"
  grep -qi '^grpc-status: 0' "$out.headers" ||
    die "$5: grpc-status is not 0: $(grep -i '^grpc-' "$out.headers" | tr -d '\r' | tr '\n' ' ')"
  cmp -s "$out.body" "$4" || die "$5: the response is not the expected image ($(wc -c <"$out.body") bytes, expected $(wc -c <"$4"))"
}

# For answers with no fixed bytes (a List page carries a page token): grpc-status
# 0 and the body holds TEXT (an image id of the page).
check_grpc_holds() { # addr path request text label
  local out=$work/logs/check-$5
  curl -sS --http2-prior-knowledge --max-time 10 -H 'content-type: application/grpc' -H 'te: trailers' \
    --data-binary "@$3" -D "$out.headers" -o "$out.body" "http://$1$2" ||
    die "$5: the gRPC request failed"
  grep -qi '^grpc-status: 0' "$out.headers" ||
    die "$5: grpc-status is not 0: $(grep -i '^grpc-' "$out.headers" | tr -d '\r' | tr '\n' ' ')"
  grep -qaF "$4" "$out.body" || die "$5: the answer does not hold $4 ($(wc -c <"$out.body") bytes)"
}

check_rest() { # url id label
  local out=$work/logs/check-$3 status
  status=$(curl -sS --max-time 10 -o "$out.body" -w '%{http_code}' "$1") || die "$3: the REST request failed"
  [[ $status == 200 ]] || die "$3: HTTP status $status: $(head -c 300 "$out.body")"
  grep -Eq "\"id\" *: *\"$2\"" "$out.body" || die "$3: the answer is not image $2: $(head -c 300 "$out.body")"
}

check_all() {
  check_grpc "$app_grpc" "$COMPUTE_GET" "$frames/compute-get.req" "$frames/compute-get.resp" server-compute
  check_grpc "$ceiling_grpc" "$COMPUTE_GET" "$frames/compute-get.req" "$frames/compute-get.resp" ceiling-compute
  check_grpc "$app_grpc" "$CONTAINER_GET" "$frames/container-get.req" "$frames/container-get.resp" server-container
  check_grpc "$ceiling_grpc" "$CONTAINER_GET" "$frames/container-get.req" "$frames/container-get.resp" ceiling-container
  check_grpc_holds "$app_grpc" "$COMPUTE_LIST" "$frames/compute-list.req" "$cat_compute_sample_id" server-list
  check_grpc "$app_grpc" "$COMPUTE_LATEST" "$frames/compute-latest.req" "$frames/compute-latest.resp" server-latest
  check_rest "http://$ceiling_rest/compute/v1/images/$cat_compute_sample_id" "$cat_compute_sample_id" ceiling-rest
  if [[ $rest_face == yes ]]; then
    check_rest "http://127.0.0.1:$rest_port/compute/v1/images/$cat_compute_sample_id" "$cat_compute_sample_id" server-rest
  fi
}

# The machine's load average (others' jobs included) before and after the load
# runs, printed with the table as a hint of how noisy the figures are.
loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
# The hypervisor's share too: CPU time the VM wanted but another guest got
# ("steal", /proc/stat), which slows everything measured here.
cpu_counters() { awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t}' /proc/stat; }
read -r steal_before total_before < <(cpu_counters)

log "checking that every target answers the benchmark requests with the real image"
check_all
# A second, independent client: grpcurl through reflection, when it's around.
# (tests/run.sh installs one into target/client-venv.)
grpcurl=${IMAGE_SERVICE_GRPCURL:-$(command -v grpcurl || echo target/client-venv/bin/grpcurl)}
if [[ -x $grpcurl ]]; then
  "$grpcurl" -plaintext -d "{\"image_id\": \"$cat_compute_sample_id\"}" "$app_grpc" \
    yandex.cloud.compute.v1.ImageService/Get >"$work/logs/check-grpcurl.json" ||
    die "grpcurl Get failed"
  grep -q "\"id\": \"$cat_compute_sample_id\"" "$work/logs/check-grpcurl.json" || die "grpcurl got another image"
fi

# ---------------------------------------------------------------- load
# Runs h2load, fails on any failed, errored, timed-out or non-2xx request, and
# appends "scenario target round req/s p50_us p99_us requests" to rounds.tsv.
# p50/p99 come from h2load's per-request log (it prints only mean and sd).
# CPU time (user + system, all threads) a process has used, in microseconds.
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($14 + $15) * 1000000 / hz}' "/proc/$1/stat"; }

load() { # scenario target round pid url h2load-args...
  local scenario=$1 target=$2 round=$3 pid=$4 url=$5
  shift 5
  local name=$scenario-$target-$round
  local out=$work/logs/h2load-$name.txt reqlog=$work/logs/h2load-$name.tsv
  rm -f "$reqlog" # h2load appends to an existing log file
  local cpu_before cpu_after
  cpu_before=$(cpu_us "$pid")
  h2load "$@" --log-file "$reqlog" "$url" >"$out" 2>&1 || die "h2load failed for $name: $(tail -3 "$out")"
  cpu_after=$(cpu_us "$pid")
  local rps completed ok failed errored timeout not2xx
  rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' "$out")
  read -r completed ok failed errored timeout < <(awk '/^requests:/ {print $6, $8, $10, $12, $14}' "$out")
  # 3xx + 4xx + 5xx (the 2xx count may include one answer that ended the run).
  not2xx=$(awk '/^status codes:/ {print $5 + $7 + $9}' "$out")
  [[ -n $rps && -n $completed && -n $not2xx ]] || die "$name: can't read h2load's output ($out)"
  ((completed > 0 && failed == 0 && errored == 0 && timeout == 0 && ok == completed && not2xx == 0)) ||
    die "$name: $completed done, $ok succeeded, $failed failed, $errored errored, $timeout timed out, $not2xx not 2xx (see $out)"
  local p50 p99
  read -r p50 p99 < <(cut -f3 "$reqlog" | sort -n | awk '{v[NR] = $1}
    END {i = int(NR * 0.50 + 0.999); j = int(NR * 0.99 + 0.999); print v[i], v[j]}')
  # The server's CPU time per request: what a request costs, whatever else
  # runs on the machine (includes the warm-up's requests when there is one).
  local cpu_per_request
  cpu_per_request=$(awk -v c=$((cpu_after - cpu_before)) -v n="$completed" 'BEGIN {printf "%.2f", c / n}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$target" "$round" "$rps" "$p50" "$p99" "$completed" \
    "$cpu_per_request" >>"$rounds_tsv"
  printf '   %-16s %-8s round %s: %10.0f req/s  p50 %6s us  p99 %6s us  server CPU %6s us/request\n' \
    "$scenario" "$target" "$round" "$rps" "$p50" "$p99" "$cpu_per_request" >&2
  rm -f "$reqlog"
}

duration_args=(-D "$BENCH_SECONDS")
((BENCH_WARMUP_SECONDS > 0)) && duration_args+=(--warm-up-time "$BENCH_WARMUP_SECONDS")
grpc_args=(-c "$GRPC_CONNS" -m "$GRPC_STREAMS" -H 'content-type: application/grpc' -H 'te: trailers')

# One scenario's pair of runs, ceiling first in odd rounds and image-service
# first in even ones, so a trend in the machine's load favours neither.
pair() { # round scenario ceiling-pid ceiling-url server-pid server-url h2load-args...
  local round=$1 scenario=$2 cpid=$3 curl=$4 spid=$5 surl=$6
  shift 6
  if ((round % 2)); then
    load "$scenario" ceiling "$round" "$cpid" "$curl" "$@"
    [[ -n $spid ]] && load "$scenario" server "$round" "$spid" "$surl" "$@"
  else
    [[ -n $spid ]] && load "$scenario" server "$round" "$spid" "$surl" "$@"
    load "$scenario" ceiling "$round" "$cpid" "$curl" "$@"
  fi
  return 0
}

rest_path=/compute/v1/images/$cat_compute_sample_id
rest_server_pid= # empty: no REST face, so only the ceiling runs
if [[ $rest_face == yes ]]; then rest_server_pid=$app_pid; fi
for round in $(seq "$BENCH_ROUNDS"); do
  log "round $round of $BENCH_ROUNDS: ceiling and image-service, for each scenario"
  pair "$round" compute-grpc "$ceiling_grpc_pid" "http://$ceiling_grpc$COMPUTE_GET" "$app_pid" "http://$app_grpc$COMPUTE_GET" \
    "${grpc_args[@]}" "${duration_args[@]}" -d "$frames/compute-get.req"
  pair "$round" container-grpc "$ceiling_grpc_pid" "http://$ceiling_grpc$CONTAINER_GET" "$app_pid" "http://$app_grpc$CONTAINER_GET" \
    "${grpc_args[@]}" "${duration_args[@]}" -d "$frames/container-get.req"
  pair "$round" compute-rest "$ceiling_rest_pid" "http://$ceiling_rest$rest_path" "$rest_server_pid" "http://127.0.0.1:${rest_port:-0}$rest_path" \
    --h1 -c "$REST_CONNS" "${duration_args[@]}"
  # List and GetLatestByFamily have no ceiling of their own: figures of the server alone.
  load compute-list server "$round" "$app_pid" "http://$app_grpc$COMPUTE_LIST" \
    "${grpc_args[@]}" "${duration_args[@]}" -d "$frames/compute-list.req"
  load compute-latest server "$round" "$app_pid" "http://$app_grpc$COMPUTE_LATEST" \
    "${grpc_args[@]}" "${duration_args[@]}" -d "$frames/compute-latest.req"
done

# Column COL (4 rps, 5 p50, 6 p99) of SCENARIO/TARGET rounds: the median.
median() { # scenario target col
  awk -F'\t' -v s="$1" -v t="$2" -v c="$3" '$1 == s && $2 == t {print $c}' "$rounds_tsv" | sort -g |
    awk '{v[NR] = $1} END {if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# The median over rounds of server / ceiling, column COL: each round's two runs
# are back to back, so they share whatever else the machine was doing.
ratio_median() { # scenario col
  awk -F'\t' -v s="$1" -v c="$2" '$1 == s {v[$3 "," $2] = $c; r[$3] = 1}
    END {for (k in r) if ((k ",server") in v && (k ",ceiling") in v) print v[k ",server"] / v[k ",ceiling"]}' "$rounds_tsv" |
    sort -g | awk '{v[NR] = $1} END {if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# p99 at half of image-service's own maximum, paced by h2load --rps; the
# ceiling is driven at the same rate for comparison.
server_max=$(median compute-grpc server 4)
half_rate=$(awk -v r="$server_max" -v c="$HALF_CONNS" 'BEGIN {x = int(r / 2 / c) * c; print (x < c ? c : x)}')
half_requests=$((half_rate * BENCH_SECONDS))
half_args=(-c "$HALF_CONNS" -r 1 --rate-period 1ms --rps $((half_rate / HALF_CONNS)) -n "$half_requests"
  -m "$GRPC_STREAMS" -H 'content-type: application/grpc' -H 'te: trailers' -d "$frames/compute-get.req")
for round in $(seq "$BENCH_ROUNDS"); do
  log "half load ($half_rate req/s), round $round of $BENCH_ROUNDS"
  pair "$round" compute-half "$ceiling_grpc_pid" "http://$ceiling_grpc$COMPUTE_GET" "$app_pid" "http://$app_grpc$COMPUTE_GET" "${half_args[@]}"
done
# The same over REST: half of image-service's REST maximum, HTTP/1.1 keep-alive
# (one request at a time per connection), paced the same way.
rest_half_rate=
if [[ $rest_face == yes ]]; then
  rest_max=$(median compute-rest server 4)
  rest_half_rate=$(awk -v r="$rest_max" -v c="$HALF_CONNS" 'BEGIN {x = int(r / 2 / c) * c; print (x < c ? c : x)}')
  rest_half_args=(--h1 -c "$HALF_CONNS" -r 1 --rate-period 1ms --rps $((rest_half_rate / HALF_CONNS))
    -n $((rest_half_rate * BENCH_SECONDS)))
  for round in $(seq "$BENCH_ROUNDS"); do
    log "REST half load ($rest_half_rate req/s), round $round of $BENCH_ROUNDS"
    pair "$round" rest-half "$ceiling_rest_pid" "http://$ceiling_rest$rest_path" "$app_pid" \
      "http://127.0.0.1:$rest_port$rest_path" "${rest_half_args[@]}"
  done
fi

loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)
read -r steal_after total_after < <(cpu_counters)
steal_percent=$(awk -v s=$((steal_after - steal_before)) -v t=$((total_after - total_before)) \
  'BEGIN {printf "%.1f", (t > 0 ? 100 * s / t : 0)}')
log "checking the answers again after the load"
check_all
stop_process "$app_pid"
stop_process "$ceiling_grpc_pid"
stop_process "$ceiling_rest_pid"

# ---------------------------------------------------------------- start-up
# From launch to the "serving gRPC" line: read, validate and index the catalog.
# Resident memory is read once serving, before any request.
startup_tsv=$work/startup.tsv
: >"$startup_tsv"
for run in $(seq "$BENCH_STARTUP_RUNS"); do
  log "start-up with $BENCH_STARTUP_IMAGES compute images, run $run of $BENCH_STARTUP_RUNS"
  started=$(date +%s%N)
  start_server "$work/catalog-startup.json" "startup-$run"
  ready=$(date +%s%N)
  rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status")
  hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")
  # CPU time (user + system) spent so far, all threads: unlike the wall-clock
  # time it hardly moves when other jobs share the cores.
  cpu_ms=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($14 + $15) * 1000 / hz}' "/proc/$server_pid/stat")
  stop_process "$server_pid"
  printf '%s\t%s\t%s\t%s\n' "$(((ready - started) / 1000000))" "$rss_kb" "$hwm_kb" "$cpu_ms" >>"$startup_tsv"
  printf '   start-up %s ms (CPU %s ms), VmRSS %s kB, VmHWM %s kB\n' "$(((ready - started) / 1000000))" "$cpu_ms" "$rss_kb" "$hwm_kb" >&2
done
log "check-catalog with $BENCH_STARTUP_IMAGES compute images"
started=$(date +%s%N)
"$bin" check-catalog "$work/catalog-startup.json" >"$work/logs/check-catalog.txt" || die "check-catalog failed"
check_ms=$((($(date +%s%N) - started) / 1000000))

# ---------------------------------------------------------------- PostgreSQL
# The start-up catalog imported into a schema of its own, then Get served from
# it under the same load as the in-memory Get. The CPU figure is image-service's
# alone (PostgreSQL's own work is not in it).
pg_import_ms=
if [[ $BENCH_DATABASE_URL != none ]]; then
  pg_admin() { psql "$BENCH_DATABASE_URL" -qAt -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning; $1" >/dev/null; }
  pg_admin "SELECT 1" || die "PostgreSQL at $BENCH_DATABASE_URL does not answer (start it, or set BENCH_DATABASE_URL=none)"
  pg_admin "DROP SCHEMA IF EXISTS $BENCH_SCHEMA CASCADE; CREATE SCHEMA $BENCH_SCHEMA"
  pg_cleanup() { pg_admin "DROP SCHEMA IF EXISTS $BENCH_SCHEMA CASCADE" || true; }
  trap 'cleanup; pg_cleanup' EXIT
  separator=$([[ $BENCH_DATABASE_URL == *\?* ]] && echo '&' || echo '?')
  pg_url="$BENCH_DATABASE_URL${separator}options=-c%20search_path%3D$BENCH_SCHEMA"
  log "importing $BENCH_STARTUP_IMAGES compute images into PostgreSQL (schema $BENCH_SCHEMA)"
  started=$(date +%s%N)
  "$bin" import --database-url "$pg_url" --database-statement-timeout 3600s "$work/catalog-startup.json" \
    >"$work/logs/pg-import.log" 2>&1 || die "import failed: $(tail -3 "$work/logs/pg-import.log")"
  pg_import_ms=$((($(date +%s%N) - started) / 1000000))
  log "imported in $pg_import_ms ms"
  psql "$pg_url" -qAt -c "ANALYZE" >/dev/null
  "$bin" serve --database-url "$pg_url" --grpc-listen 127.0.0.1:0 --log-format json "${shutdown_args[@]}" \
    >"$work/logs/pg-server.log" 2>&1 &
  pg_pid=$!
  pids+=("$pg_pid")
  wait_for_line "$pg_pid" "$work/logs/pg-server.log" '"serving gRPC' 120
  pg_grpc=$(grep -o '"grpc":"[^"]*"' "$work/logs/pg-server.log" | head -1 | cut -d'"' -f4)
  check_grpc "$pg_grpc" "$COMPUTE_GET" "$work/frames-big/compute-get.req" "$work/frames-big/compute-get.resp" pg-compute
  for round in $(seq "$BENCH_ROUNDS"); do
    log "PostgreSQL Get, round $round of $BENCH_ROUNDS"
    load pg-get server "$round" "$pg_pid" "http://$pg_grpc$COMPUTE_GET" \
      "${grpc_args[@]}" "${duration_args[@]}" -d "$work/frames-big/compute-get.req"
  done
  check_grpc "$pg_grpc" "$COMPUTE_GET" "$work/frames-big/compute-get.req" "$work/frames-big/compute-get.resp" pg-compute-after
  stop_process "$pg_pid"
fi

# ---------------------------------------------------------------- instructions
# The one figure the machine's noise can't move: instructions executed per
# compute Get, server and ceiling, counted by callgrind (bench/call_cost.sh).
log "instructions per call under callgrind (bench/call_cost.sh)"
if [[ $mode == smoke ]]; then
  export CALL_COST_N1=20 CALL_COST_N2=60
fi
CALL_COST_EXAMPLES=$examples bench/call_cost.sh "$bin" >"$work/call_cost.txt" 2>"$work/logs/call_cost.log" ||
  die "bench/call_cost.sh failed: $(tail -3 "$work/logs/call_cost.log")"
ir_of() { # target kind
  awk -v t="$1" -v k="$2" '$1 == t && $4 == k {print $5; exit}' "$work/call_cost.txt"
}

col_median() { # file col
  cut -f"$2" "$1" | sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
startup_ms=$(col_median "$startup_tsv" 1)
rss_kb=$(col_median "$startup_tsv" 2)
hwm_kb=$(col_median "$startup_tsv" 3)
startup_cpu_ms=$(col_median "$startup_tsv" 4)

# ---------------------------------------------------------------- table
fmt_int() { # 1234567.8 -> 1,234,568
  awk -v x="$1" 'BEGIN {s = sprintf("%.0f", x); out = ""
    while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
    print s out}'
}
fmt_ms() { awk -v x="$1" 'BEGIN {printf "%.2f", x / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {ok = (op == ">=" ? v >= t : v <= t); print (ok ? "met" : "**missed**")}'; }

throughput_row() { # scenario label target-ratio
  local s c r
  s=$(median "$1" server 4)
  c=$(median "$1" ceiling 4)
  if [[ -z $s ]]; then
    printf '| %s | n/a (no REST face yet) | %s req/s | n/a | %s | n/a |\n' "$2" "$(fmt_int "$c")" "${3:+≥ $3 × ceiling}"
    return
  fi
  r=$(awk -v x="$(ratio_median "$1" 4)" 'BEGIN {printf "%.2f", x}')
  printf '| %s | %s req/s | %s req/s | %s | %s | %s |\n' "$2" "$(fmt_int "$s")" "$(fmt_int "$c")" "$r" \
    "${3:+≥ $3 × ceiling}" "$([[ -n $3 ]] && verdict "$r" '>=' "$3" || echo "-")"
}

cpu_row() { # scenario label
  local s c
  s=$(median "$1" server 8)
  c=$(median "$1" ceiling 8)
  [[ -z $s ]] && { printf '| %s | n/a | %s µs | | | |\n' "$2" "$c"; return; }
  printf '| %s | %s µs | %s µs | %s | | |\n' "$2" "$s" "$c" "$(awk -v x="$(ratio_median "$1" 8)" 'BEGIN {printf "%.2f", x}')"
}

latency_row() { # scenario label [p99 target us]
  local s50 s99 c50 c99
  s50=$(median "$1" server 5) s99=$(median "$1" server 6)
  c50=$(median "$1" ceiling 5) c99=$(median "$1" ceiling 6)
  [[ -z $s50 ]] && { printf '| %s | n/a | %s / %s ms | | | |\n' "$2" "$(fmt_ms "$c50")" "$(fmt_ms "$c99")"; return; }
  printf '| %s | %s / %s ms | %s / %s ms | %s | %s | %s |\n' "$2" "$(fmt_ms "$s50")" "$(fmt_ms "$s99")" \
    "$(fmt_ms "$c50")" "$(fmt_ms "$c99")" "$(awk -v x="$(ratio_median "$1" 6)" 'BEGIN {printf "%.2f", x}') (p99)" \
    "${3:+p99 ≤ $(fmt_ms "$3") ms}" "$([[ -n ${3:-} ]] && verdict "$s99" '<=' "$3" || echo "-")"
}

# A scenario with no ceiling: throughput, latency and CPU of the server alone.
server_row() { # scenario label
  local s
  s=$(median "$1" server 4)
  [[ -z $s ]] && { printf '| %s | n/a | | | | |\n' "$2"; return; }
  printf '| %s | %s req/s; p50 / p99 %s / %s ms; server CPU %s µs/request | | | | - |\n' "$2" "$(fmt_int "$s")" \
    "$(fmt_ms "$(median "$1" server 5)")" "$(fmt_ms "$(median "$1" server 6)")" "$(median "$1" server 8)"
}

mib() { awk -v x="$1" 'BEGIN {printf (x < 10 * 1048576 ? "%.1f" : "%.0f"), x / 1048576}'; }
big_proto_kb=$((big_compute_proto_bytes / 1024))
{
  echo "| figure | image-service | ceiling | ratio | target | result |"
  echo "|---|---|---|---|---|---|"
  throughput_row compute-grpc "compute Get, gRPC, $GRPC_CONNS conns × $GRPC_STREAMS streams: throughput" 0.90
  latency_row compute-grpc "compute Get, gRPC, same load: p50 / p99"
  cpu_row compute-grpc "compute Get, gRPC, same load: server CPU time per request"
  throughput_row container-grpc "container registry Get ($BENCH_LAYERS layers), gRPC, $GRPC_CONNS × $GRPC_STREAMS: throughput" 0.90
  latency_row container-grpc "container registry Get, same load: p50 / p99"
  cpu_row container-grpc "container registry Get, same load: server CPU time per request"
  throughput_row compute-rest "compute Get, REST (HTTP/1.1 keep-alive, $REST_CONNS conns): throughput" 0.70
  latency_row compute-rest "compute Get, REST, same load: p50 / p99"
  cpu_row compute-rest "compute Get, REST, same load: server CPU time per request"
  for kind in gRPC REST; do
    lower=$(tr '[:upper:]' '[:lower:]' <<<"$kind")
    s=$(ir_of "$bin" "$kind") c=$(ir_of "ceiling-$lower" "$kind")
    printf '| compute Get, %s: instructions per call (callgrind, one connection; not moved by the machine'"'"'s load) | %s | %s | %s | | - |\n' \
      "$kind" "$(fmt_int "$s")" "$(fmt_int "$c")" "$(ratio "$s" "$c")"
  done
  latency_row compute-half "compute Get, gRPC, at half load ($(fmt_int "$half_rate") req/s, both): p50 / p99" 1000
  if [[ -n $rest_half_rate ]]; then
    latency_row rest-half "compute Get, REST, at half load ($(fmt_int "$rest_half_rate") req/s, both): p50 / p99" 1000
  fi
  printf '| catalog start-up, %s compute images (launch → "serving gRPC"; CPU time of all threads) | %s s (CPU %s s) | | | ≤ 5 s | %s |\n' \
    "$(fmt_int "$BENCH_STARTUP_IMAGES")" "$(awk -v x="$startup_ms" 'BEGIN {printf "%.2f", x / 1000}')" \
    "$(awk -v x="$startup_cpu_ms" 'BEGIN {printf "%.2f", x / 1000}')" "$(verdict "$startup_ms" '<=' 5000)"
  # shellcheck disable=SC2016 # backquotes are markdown
  printf '| `check-catalog`, %s compute images | %s s | | | | |\n' "$(fmt_int "$BENCH_STARTUP_IMAGES")" \
    "$(awk -v x="$check_ms" 'BEGIN {printf "%.2f", x / 1000}')"
  printf '| resident memory serving %s images (VmRSS; peak VmHWM %s MiB) | %s MiB | protobuf size %s MiB | %s × | ≤ 2 × protobuf | %s |\n' \
    "$(fmt_int "$BENCH_STARTUP_IMAGES")" "$((hwm_kb / 1024))" "$((rss_kb / 1024))" "$(mib "$big_compute_proto_bytes")" \
    "$(ratio "$rss_kb" "$big_proto_kb")" "$(verdict "$(ratio "$rss_kb" "$big_proto_kb")" '<=' 2)"
  server_row compute-list "compute List (page of 100 from a folder of $(fmt_int "$cat_compute_sample_folder_images") images), gRPC, $GRPC_CONNS × $GRPC_STREAMS"
  server_row compute-latest "compute GetLatestByFamily, gRPC, $GRPC_CONNS × $GRPC_STREAMS"
  if [[ -n $pg_import_ms ]]; then
    server_row pg-get "PostgreSQL backend: compute Get, gRPC, $GRPC_CONNS × $GRPC_STREAMS, $(fmt_int "$BENCH_STARTUP_IMAGES") rows (import took $(awk -v x="$pg_import_ms" 'BEGIN {printf "%.1f", x / 1000}') s)"
  else
    echo "| PostgreSQL backend: compute Get | n/a (BENCH_DATABASE_URL=none) | | | | |"
  fi
} >"$work/table.md"

{
  echo
  echo "image-service benchmark ($mode): $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "load average (1, 5, 15 min) before the load runs: $loadavg_before; after: $loadavg_after;" \
    "CPU steal during them: $steal_percent %"
  echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr); $(h2load --version | head -1)"
  echo "catalog: $(fmt_int "$BENCH_IMAGES") compute images ($(mib "$cat_compute_proto_bytes") MiB as protobuf, sample $cat_compute_sample_proto_bytes B)," \
    "$(fmt_int "$BENCH_CONTAINER_IMAGES") container registry images (sample $cat_container_sample_proto_bytes B);" \
    "medians of $BENCH_ROUNDS rounds of ${BENCH_SECONDS} s, ceiling and server back to back, in turn first;" \
    "ratio = median of the per-round ratios"
  echo
  cat "$work/table.md"
  echo
} | tee "$work/results.md"
log "per-round figures: $rounds_tsv; logs: $work/logs"
