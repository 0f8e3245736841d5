# bench/callgrind.sh: sourced by bench/call_cost.sh and bench/auth_cost.sh (and
# bench/list_cost.sh for free_port). It counts the instructions one call costs
# a server: the server runs under callgrind twice, answering N1 and then N2
# calls from h2load on one connection, one call at a time, and
# (Ir(N2) - Ir(N1)) / (N2 - N1) is one call, start-up and shutdown cancelling
# out.
#
# The sourcing script sets N1, N2 and callgrind_work (a scratch directory it
# removes), and before each measurement callgrind_load: h2load's arguments
# past -n, with PORT where the server's port goes.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The instruction total of one run of COMMAND under callgrind: waits for READY
# in its output, makes N calls (h2load -n N "${callgrind_load[@]}" with PORT
# replaced), checks that every one succeeded, stops COMMAND.
callgrind_total() { # n port ready command...
  local n=$1 port=$2 ready=$3 out pid
  shift 3
  out=$callgrind_work/callgrind.$RANDOM
  valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >"$out.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    grep -q "$ready" "$out.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  h2load -n "$n" "${callgrind_load[@]//PORT/$port}" >"$callgrind_work/h2load.log" 2>&1 || true
  # A failed run stops its server too (this runs in a subshell, which the
  # sourcing script's EXIT trap doesn't cover).
  grep -q " $n succeeded, 0 failed, 0 errored" "$callgrind_work/h2load.log" || {
    cat "$out.log" "$callgrind_work/h2load.log" >&2
    kill -KILL "$pid" 2>/dev/null || true
    exit 1
  }
  kill -TERM "$pid"
  wait "$pid" || true
  awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

# Instructions per call of COMMAND (PORT in it replaced by a free port) under
# the load in callgrind_load.
callgrind_per_call() { # ready command...
  local ready=$1 a b port
  shift
  port=$(free_port)
  a=$(callgrind_total "$N1" "$port" "$ready" "${@//PORT/$port}") &&
    b=$(callgrind_total "$N2" "$port" "$ready" "${@//PORT/$port}") &&
    [[ -n $a && -n $b ]] || { echo "a callgrind run failed" >&2; exit 1; }
  echo $(((b - a) / (N2 - N1)))
}
