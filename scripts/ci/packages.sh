#!/usr/bin/env bash
# Debian packages the tests need that a fresh machine lacks: Chromium (the dashboard's browser test,
# issue #16) and HAProxy (the load balancer of `npm run cluster` and its test). Installed only when
# missing, so a developer machine that has them is left alone.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v haproxy >/dev/null || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# `sed -n 1p` reads all of its input: `head -1` closes the pipe early, the writer dies of SIGPIPE and,
# under pipefail, the script exits 141 (what failed stop 21's CI run).
chromium --version 2>/dev/null | sed -n 1p
haproxy -v | sed -n 1p
