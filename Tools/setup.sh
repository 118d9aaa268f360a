#!/usr/bin/env bash
# Installs what Larder needs from Debian/Ubuntu packages when it is missing:
# liblmdb-dev (headers + library), lmdb-utils (mdb_stat, mdb_dump, used by tests and docs),
# libsqlite3-dev (the SQLite contestant of the benchmark harness) and libcurl4 (URLSession).
# With --tests it also installs what only the test suite needs: Debian's postgresql (the fleet
# tests start a throwaway server of their own; the package's default cluster is not used), and
# schemathesis and prometheus-client from PyPI (Tools/install-test-tools.sh).
# Idempotent: does nothing when everything is present.
set -euo pipefail

for_tests=false
case "${1:-}" in
  --tests) for_tests=true ;;
  "") ;;
  *) echo "usage: bash Tools/setup.sh [--tests]" >&2; exit 64 ;;
esac

missing=()
[ -f /usr/include/lmdb.h ] || missing+=(liblmdb-dev)
command -v mdb_stat >/dev/null 2>&1 || missing+=(lmdb-utils)
[ -f /usr/include/sqlite3.h ] || missing+=(libsqlite3-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
# libcurl: Swift's FoundationNetworking (URLSession), which `larder witness` fetches checkpoints with.
# curl: the README's auditor steps, which a test runs as written.
command -v curl >/dev/null 2>&1 || missing+=(curl)
ldconfig -p 2>/dev/null | grep -q 'libcurl.so.4 ' || missing+=(libcurl4)
if $for_tests; then
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
fi

# schemathesis and prometheus-client (PyPI) for the OpenAPI and /metrics tests; never fails:
# without them those tests skip.
if $for_tests; then bash "$(dirname "$0")/install-test-tools.sh"; fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq >/dev/null || true
"${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
