# Real PostgreSQL and S3 for the registry and artifact tests. Source it, then:
#   services_start   # starts both in a fresh temp dir, exports SLUICE_TEST_* for the tests
#   services_stop    # stops both and removes the temp dir (idempotent; use it in an EXIT trap)
# A developer can do the same by hand:  source scripts/ci/services.sh && services_start
# (SLUICE_MOTO_VENV=<dir> keeps moto's virtualenv between runs).

_sluice_ci_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

services_start() {
  SLUICE_SERVICES_DIR="$(mktemp -d "${TMPDIR:-/tmp}/sluice-services.XXXXXX")"
  chmod 755 "$SLUICE_SERVICES_DIR"   # the postgres OS user must reach its data dir inside
  export SLUICE_SERVICES_DIR
  local t0=$SECONDS
  # moto's pip install takes longest: run it in the background while PostgreSQL starts.
  # (setsid: its own process group, so services_stop can end it and its pip if we fail first.)
  setsid bash "$_sluice_ci_dir/s3.sh" start "$SLUICE_SERVICES_DIR/s3" >"$SLUICE_SERVICES_DIR/s3.url" &
  _sluice_s3_starter=$!
  SLUICE_TEST_DATABASE_URL="$(bash "$_sluice_ci_dir/postgres.sh" start "$SLUICE_SERVICES_DIR/pg")"
  wait "$_sluice_s3_starter"
  _sluice_s3_starter=""
  SLUICE_TEST_S3_ENDPOINT="$(cat "$SLUICE_SERVICES_DIR/s3.url")"
  export SLUICE_TEST_DATABASE_URL SLUICE_TEST_S3_ENDPOINT
  # moto accepts any credentials; the tests make their own buckets under this prefix.
  export SLUICE_TEST_S3_BUCKET="sluice-test"
  export SLUICE_TEST_S3_REGION="us-east-1"
  export SLUICE_TEST_S3_ACCESS_KEY_ID="sluice-test"
  export SLUICE_TEST_S3_SECRET_ACCESS_KEY="sluice-test-secret"
  # For tests that stop and start a private PostgreSQL of their own.
  export SLUICE_TEST_PG_BIN="${SLUICE_PG_BIN:-/usr/lib/postgresql/15/bin}"
  # A python with prometheus_client and tritonclient (installed beside moto), for the /metrics
  # reference check and the tritonclient compatibility test.
  export SLUICE_TEST_PYTHON="${SLUICE_MOTO_VENV:-$SLUICE_SERVICES_DIR/s3/venv}/bin/python"
  echo "services: PostgreSQL at 127.0.0.1:$(cat "$SLUICE_SERVICES_DIR/pg/port"), S3 (moto) at $SLUICE_TEST_S3_ENDPOINT, up in $((SECONDS - t0)) s"
}

services_stop() {
  [ -n "${SLUICE_SERVICES_DIR:-}" ] && [ -d "$SLUICE_SERVICES_DIR" ] || return 0
  if [ -n "${_sluice_s3_starter:-}" ]; then
    kill -TERM -- "-$_sluice_s3_starter" 2>/dev/null || true
    wait "$_sluice_s3_starter" 2>/dev/null || true
  fi
  bash "$_sluice_ci_dir/s3.sh" stop "$SLUICE_SERVICES_DIR/s3" || true
  bash "$_sluice_ci_dir/postgres.sh" stop "$SLUICE_SERVICES_DIR/pg" || true
  rm -rf "$SLUICE_SERVICES_DIR"
  unset SLUICE_SERVICES_DIR
}
