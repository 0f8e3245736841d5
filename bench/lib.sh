# bench/lib.sh: what the bench scripts share (sourced, not run).

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# A tool the script needs, installed from Debian when missing and running as root.
need_tool() { # command debian-package
  command -v "$1" >/dev/null && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing $2 (for $1)"
    # apt-get update first: a fresh machine has no package lists.
    if ! { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; then
      die "apt-get install $2 failed"
    fi
  fi
  command -v "$1" >/dev/null || die "$1 not found: install it (Debian: apt-get install $2)"
}

# Starts `$bin serve` on free ports with JSON logs into $work/logs/NAME.log and waits
# until it serves; sets server_pid, grpc_addr and http_addr, and adds the pid to pids.
start_serve() { # name serve-args...
  local name=$1
  shift
  "$bin" serve --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --log-format json --shutdown-delay 0s "$@" \
    >"$work/logs/$name.log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 3000); do
    grep -q '"serving gRPC' "$work/logs/$name.log" && break
    kill -0 "$server_pid" 2>/dev/null || die "$name did not start: $(tail -3 "$work/logs/$name.log")"
    sleep 0.05
  done
  grpc_addr=$(grep -o '"grpc":"[^"]*"' "$work/logs/$name.log" | head -1 | cut -d'"' -f4)
  http_addr=$(grep -o '"http":"[^"]*"' "$work/logs/$name.log" | head -1 | cut -d'"' -f4)
  [[ -n $grpc_addr ]] || die "$name did not start in time"
}

# Compute Gets over gRPC for $BENCH_SECONDS, 8 connections x 16 streams, each
# request the frame in FILE; prints requests per second, stops on any failure.
grpc_get_rps() { # label host:port file
  local out=$work/logs/h2load-$1.txt
  h2load -c 8 -m 16 -H 'content-type: application/grpc' -H 'te: trailers' -D "$BENCH_SECONDS" \
    -d "$3" "http://$2/yandex.cloud.compute.v1.ImageService/Get" >"$out" 2>&1 || die "h2load failed ($out)"
  awk '/^requests:/ {if ($8 != $6 || $10 != 0) exit 1}' "$out" || die "failed Gets in $out"
  awk '/^finished in/ {gsub(",", "", $4); print $4}' "$out"
}
