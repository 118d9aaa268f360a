#!/usr/bin/env bash
# The fleet benchmark (BENCHMARKS.md, "Fleet"): a throwaway PostgreSQL server on a free loopback
# port, BOXES stores of RECORDS audit records each, one box shipped alone, the others shipped
# concurrently into the same database, then the whole fleet verified on one connection; then
# `larder ship` and `larder fleet verify` once more as plain commands, and the whole fleet
# verified again 4 boxes at a time. Prints the figures.
#
#   bash Tools/fleet-simulation.sh [BOXES] [RECORDS] [BATCH] [METHOD]   # defaults: 50 100000 1000 copy
#
# Needs Debian's postgresql (bash Tools/setup.sh) and about 1.5 KB of disk per record (stores and
# database). Set LARDER_FLEET_WORK=DIR to keep the generated stores between runs (they are reused),
# LARDER_FLEET_KEEP=1 to keep everything after the run.
set -euo pipefail
cd "$(dirname "$0")/.."
boxes=${1:-50}
records=${2:-100000}
batch=${3:-1000}
method=${4:-copy}

swift build -c release --product larder >&2
larder="$(swift build -c release --show-bin-path)/larder"
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "fleet-simulation: PostgreSQL is not installed (bash Tools/setup.sh)" >&2; exit 1; }

work=${LARDER_FLEET_WORK:-$(mktemp -d /tmp/larder-fleet-sim.XXXXXX)}
mkdir -p "$work"
pgdir=$(mktemp -d /tmp/larder-fleet-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  # initdb and pg_ctl refuse root: they run as the postgres user, in a directory it owns.
  chown postgres "$pgdir"
  as_pg=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
settings="-c listen_addresses=127.0.0.1 -p $port -k $pgdir -c max_connections=200 -c shared_buffers=1GB -c max_wal_size=8GB"
"${as_pg[@]}" "$bin/initdb" -D "$pgdir/data" -U larder -A trust -E UTF8 --locale=C >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 -o "$settings" start >/dev/null
cleanup() {
  "${as_pg[@]}" "$bin/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1 || true
  if [ -z "${LARDER_FLEET_KEEP:-}" ]; then
    rm -rf "$pgdir"
    [ -n "${LARDER_FLEET_WORK:-}" ] || rm -rf "$work"
  fi
}
trap cleanup EXIT

echo "fleet-simulation: $boxes boxes x $records records, batch $batch, $method; PostgreSQL $("$bin/postgres" --version | awk '{print $3}') ($settings; fsync on)"
echo "fleet-simulation: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
url="postgres://larder@127.0.0.1:$port/postgres?sslmode=disable"
"$larder" fleet simulate --postgres "$url" --boxes "$boxes" --records "$records" --batch "$batch" --method "$method" --work "$work/boxes"

# The same two commands an operator types, timed as commands (a second database, one box).
psql -h 127.0.0.1 -p "$port" -U larder -d postgres -qc "CREATE DATABASE cli" >/dev/null
cli="postgres://larder@127.0.0.1:$port/cli?sslmode=disable"
store="$work/boxes/sim-000"
timed() { if [ -x /usr/bin/time ]; then /usr/bin/time -f "  (%e s wall, %M KB max RSS)" "$@"; else time "$@"; fi; }
echo "\$ larder ship --db $store --postgres $cli --box-id kitchen-0 --batch $batch"
timed "$larder" ship --db "$store" --postgres "$cli" --box-id kitchen-0 --batch "$batch" 2>&1 | grep -v '^ship:'
echo "\$ larder fleet verify --postgres $cli"
timed "$larder" fleet verify --postgres "$cli" 2>&1 | grep -v '^fleet verify:'
echo "\$ larder fleet verify --postgres $url --jobs 4   # the whole simulated fleet, 4 boxes at a time"
"$larder" fleet verify --postgres "$url" --jobs 4 2>&1 | tail -1
psql -h 127.0.0.1 -p "$port" -U larder -d postgres -Atc \
  "SELECT 'database size: ' || pg_size_pretty(pg_database_size('postgres')) || ', larder_audit ' || pg_size_pretty(pg_total_relation_size('larder_audit'))"
