#!/usr/bin/env bash
# A throw-away PostgreSQL 15 cluster for tests: `postgres.sh start DIR` creates it in DIR on the
# first call (initdb) and starts it on 127.0.0.1 and a free port (kept in DIR/port, so a later
# `start DIR` comes back on the same address), waits until it accepts connections, makes sure
# the database `sluice_test` exists, and prints its URL on stdout. `postgres.sh stop DIR` stops
# it (fast shutdown). Everything else goes to stderr and DIR/postgres.log.
#
# PostgreSQL refuses to run as root: as root, DIR is handed to the `postgres` OS user and every
# server command runs as that user. As another user it runs as that user.
set -euo pipefail

PG_BIN="${SLUICE_PG_BIN:-/usr/lib/postgresql/15/bin}"
PASSWORD="sluice-ci"   # a disposable test cluster on loopback; not a secret worth keeping
DB="sluice_test"

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd="$1"
dir="$(realpath -m "$2")"
data="$dir/data"

as_owner() {
  # From /: the postgres user may not be able to enter the caller's working directory.
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start() {
  [ -x "$PG_BIN/initdb" ] || { echo "postgres.sh: no PostgreSQL binaries in $PG_BIN (set SLUICE_PG_BIN)" >&2; exit 1; }
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir"
    runuser -u postgres -- test -w "$dir" || { echo "postgres.sh: the postgres user cannot reach $dir (put it under /tmp)" >&2; exit 1; }
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    local pw="$dir/pwfile"
    as_owner bash -c "umask 077; printf '%s\n' '$PASSWORD' > '$pw'"
    as_owner "$PG_BIN/initdb" -D "$data" -U postgres --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    free_port >"$dir/port"
    # Tuned for throw-away test data: no durability, small footprint, loopback only.
    as_owner bash -c "cat >> '$data/postgresql.conf'" <<CONF
listen_addresses = '127.0.0.1'
port = $(cat "$dir/port")
unix_socket_directories = '$dir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
CONF
  fi
  local port
  port="$(cat "$dir/port")"
  if ! as_owner "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 start >/dev/null \
      || { tail -n 30 "$dir/postgres.log" >&2; exit 1; }
  fi
  # -w returns once the server accepts connections; check over TCP as the tests will connect.
  for _ in $(seq 1 100); do
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then break; fi
    sleep 0.1
  done
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" || { echo "postgres.sh: not answering on port $port" >&2; exit 1; }
  if ! PGPASSWORD="$PASSWORD" "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    PGPASSWORD="$PASSWORD" "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB"
  fi
  echo "postgres://postgres:$PASSWORD@127.0.0.1:$port/$DB"
}

stop() {
  [ -f "$data/PG_VERSION" ] || return 0
  if as_owner "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_owner "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
  fi
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
