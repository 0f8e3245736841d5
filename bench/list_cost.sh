#!/usr/bin/env bash
# bench/list_cost.sh: instructions the server executes per List page, counted by
# callgrind (exact, unlike timings on a shared machine): compute List over gRPC
# (a page of 100, and a page of 50), container registry List over gRPC (a page
# of 100 images of 50 layers) and the compute page of 100 over REST; every page
# has a next page token.
#
# Usage: bench/list_cost.sh GEN_CATALOG BINARY [BINARY...]
#   (e.g. target/release/examples/gen-catalog target/release/image-service)
# The catalog is gen-catalog's images, 1,000 compute and 200 container ones (50
# layers), moved into one folder and one registry so that a small catalog (quick
# to load under callgrind) has full pages.
# Each binary serves it once under callgrind; per scenario the counters are
# zeroed after a warm-up (callgrind_control -z), N calls are made (h2load, one
# connection, one stream) and the counters dumped (callgrind_control -d): the
# dump's total over N is one call.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly GEN=$1
shift
readonly N=${LIST_COST_N:-300} WARMUP=${LIST_COST_WARMUP:-50}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$GEN" --compute 1000 --container 200 --layers 50 --out "$work/generated.json" >/dev/null
# One folder, one registry; request frames with field numbers from proto/
# (compute: folder_id 1, page_size 2; container: registry_id 1, page_size 3).
python3 - "$work" <<'PY'
import json, struct, sys
work = sys.argv[1]
catalog = json.load(open(f"{work}/generated.json"))
folder = catalog["computeImages"][0]["folderId"]
for image in catalog["computeImages"]:
    image["folderId"] = folder
registry = catalog["containerRegistryImages"][0]["name"].split("/")[0]
for image in catalog["containerRegistryImages"]:
    image["name"] = registry + "/" + image["name"].split("/", 1)[1]
json.dump(catalog, open(f"{work}/catalog.json", "w"))
open(f"{work}/folder", "w").write(folder)
def field(number, value):
    if isinstance(value, int):
        return bytes([number << 3, value])
    data = value.encode()
    return bytes([number << 3 | 2, len(data)]) + data
def frame(name, body):
    open(f"{work}/{name}", "wb").write(b"\0" + struct.pack(">I", len(body)) + body)
frame("compute-100.req", field(1, folder) + field(2, 100))
frame("compute-50.req", field(1, folder) + field(2, 50))
frame("container-100.req", field(1, registry) + field(3, 100))
PY
folder=$(cat "$work/folder")

# shellcheck source=bench/callgrind.sh
. bench/callgrind.sh

# Ir per call of N calls of h2load ARGS... against the server under callgrind (pid $pid).
measure() {
  local dump
  h2load -n "$WARMUP" -c 1 -m 1 "$@" >"$work/h2load.log" 2>&1
  callgrind_control -z "$pid" >/dev/null
  h2load -n "$N" -c 1 -m 1 "$@" >"$work/h2load.log" 2>&1
  grep -q " $N succeeded, 0 failed, 0 errored" "$work/h2load.log" || { cat "$work/h2load.log" >&2; exit 1; }
  grep -q "status codes: $N 2xx" "$work/h2load.log" || { cat "$work/h2load.log" >&2; exit 1; }
  callgrind_control -d "$pid" >/dev/null
  dump=$(ls -t "$work"/callgrind.out.* | head -1)
  awk -v n="$N" '/^(summary|totals):/ {printf "%d\n", $2 / n; exit}' "$dump"
}

grpc=(-H 'content-type: application/grpc' -H 'te: trailers')
for bin in "$@"; do
  gport=$(free_port)
  hport=$(free_port)
  rm -f "$work"/callgrind.out.*
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out.%p" "$bin" serve \
    --catalog "$work/catalog.json" --grpc-listen "127.0.0.1:$gport" --http-listen "127.0.0.1:$hport" \
    --shutdown-delay 0s >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1200); do
    grep -q 'serving gRPC and REST' "$work/server.log" && break
    sleep 0.25
  done
  grep -q 'serving gRPC and REST' "$work/server.log" || {
    cat "$work/server.log" >&2
    kill -KILL "$pid"
    exit 1
  }
  printf '%s\tcompute List, page of 100, gRPC\t%s Ir/call\n' "$bin" \
    "$(measure "${grpc[@]}" -d "$work/compute-100.req" "http://127.0.0.1:$gport/yandex.cloud.compute.v1.ImageService/List")"
  printf '%s\tcompute List, page of 50, gRPC\t%s Ir/call\n' "$bin" \
    "$(measure "${grpc[@]}" -d "$work/compute-50.req" "http://127.0.0.1:$gport/yandex.cloud.compute.v1.ImageService/List")"
  printf '%s\tcontainer List, page of 100 (50 layers), gRPC\t%s Ir/call\n' "$bin" \
    "$(measure "${grpc[@]}" -d "$work/container-100.req" "http://127.0.0.1:$gport/yandex.cloud.containerregistry.v1.ImageService/List")"
  printf '%s\tcompute List, page of 100, REST\t%s Ir/call\n' "$bin" \
    "$(measure --h1 "http://127.0.0.1:$hport/compute/v1/images?folderId=$folder&pageSize=100")"
  kill -TERM "$pid"
  wait "$pid" || true
done
