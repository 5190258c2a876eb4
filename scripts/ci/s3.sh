#!/usr/bin/env bash
# A throw-away S3-compatible server for tests: moto in server mode, from PyPI.
# `s3.sh start DIR` installs moto into a virtualenv (DIR/venv, or $SLUICE_MOTO_VENV when set so a
# developer can keep one), starts it on 127.0.0.1 and a free port, waits until it answers S3
# requests and prints its endpoint URL on stdout. The same virtualenv gets prometheus_client,
# the reference parser the /metrics test checks against, and NVIDIA's tritonclient, the real client
# test/integration/tritonclient.test.ts drives (its python: DIR/venv/bin/python). `s3.sh stop DIR` stops it. Everything else goes
# to stderr and DIR/moto.log. moto keeps objects in memory: a restart starts empty.
set -euo pipefail

MOTO_VERSION="5.2.5"
PROMETHEUS_CLIENT_VERSION="0.26.0"
TRITONCLIENT_VERSION="2.73.0"

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd="$1"
dir="$(realpath -m "$2")"
venv="${SLUICE_MOTO_VENV:-$dir/venv}"

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start() {
  mkdir -p "$dir"
  if [ ! -x "$venv/bin/moto_server" ] || ! "$venv/bin/python" -c 'import prometheus_client, tritonclient.http, tritonclient.grpc' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "moto[server]==$MOTO_VERSION" "prometheus_client==$PROMETHEUS_CLIENT_VERSION" \
      "tritonclient[http,grpc]==$TRITONCLIENT_VERSION" >&2
  fi
  local port
  port="$(free_port)"
  # setsid: its own process group, so stop can end the server and anything it started.
  setsid "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 < /dev/null &
  echo $! >"$dir/moto.pid"
  echo "$port" >"$dir/port"
  local url="http://127.0.0.1:$port"
  # Up when an S3 ListBuckets answers (any HTTP status: moto answers unsigned requests too).
  for _ in $(seq 1 150); do
    if curl -s -o /dev/null --max-time 1 "$url/"; then echo "$url"; return 0; fi
    kill -0 "$(cat "$dir/moto.pid")" 2>/dev/null || break
    sleep 0.2
  done
  echo "s3.sh: moto did not start" >&2
  tail -n 30 "$dir/moto.log" >&2 || true
  exit 1
}

stop() {
  [ -f "$dir/moto.pid" ] || return 0
  local pid
  pid="$(cat "$dir/moto.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$dir/moto.pid"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
