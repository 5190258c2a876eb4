#!/usr/bin/env bash
# CI's test of the container image's build, without a Docker engine: runs the Dockerfile's build
# script (build.sh) on `git archive HEAD` in a temp dir, then starts the built tree the way the
# image does and checks it serves and stops cleanly:
#   - a clean environment with the image's settings (SLUICE_DATA_DIR in the temp dir);
#   - the tree read-only (chmod -R a-w; as root the server also runs as uid 10001 like the
#     image, since root ignores file modes), TMPDIR read-only too, cwd the tree (WORKDIR /app);
#   - ready on /v2/health/ready; the image's HEALTHCHECK command exits 0; the dashboard's page and
#     assets are served; one inference each on
#     demo-logistic (native addon, answer checked) and demo-onnx (onnxruntime-node's binary);
#   - SIGTERM: exit code 0 within drain grace + drain timeout (+ a margin for closing).
# CARGO_TARGET_DIR defaults to the checkout's native/target when present: the crates.io
# dependencies are reused, while sluice-native itself is compiled from the archive's sources
# (cargo keys a path package's artefacts by its path).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/scripts/ci/lib.sh"

GRACE_MS=1000
DRAIN_MS=5000
CLOSE_MARGIN_MS=5000 # PostgreSQL/PGlite and the worker threads closing after the drain
IMAGE_UID=10001

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-image-check.XXXXXX")
chmod 755 "$work"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "check.sh: FAILED: $*" >&2
  [ -f "$work/server.log" ] && tail -n 40 "$work/server.log" >&2
  exit 1
}

echo "== image check: git archive HEAD -> $work/src"
mkdir "$work/src"
git -C "$root" archive --format=tar HEAD | tar -x -C "$work/src"
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d "$root/native/target" ]; then export CARGO_TARGET_DIR="$root/native/target"; fi
echo "CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-unset: the copy builds in its native/target}"

start=$SECONDS
"$work/src/scripts/image/build.sh" "$work/app"
echo "build.sh took $((SECONDS - start)) s"

app="$work/app"
data="$work/data"
ro_tmp="$work/ro-tmp"
mkdir "$data" "$ro_tmp"
chmod -R a-w "$app" "$ro_tmp"
as_image_user=()
if [ "$(id -u)" -eq 0 ]; then
  chown "$IMAGE_UID:$IMAGE_UID" "$data"
  as_image_user=(setpriv --reuid="$IMAGE_UID" --regid="$IMAGE_UID" --clear-groups)
fi

http_port=$(free_port)
grpc_port=$(free_port)
echo "== image check: node dist/src/main.js (read-only tree, uid $([ -n "${as_image_user[*]}" ] && echo $IMAGE_UID || id -u), HTTP $http_port, gRPC $grpc_port)"
image_env=(env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/nonexistent TMPDIR="$ro_tmp"
  SLUICE_DATA_DIR="$data" SLUICE_HTTP_HOST=127.0.0.1 SLUICE_GRPC_HOST=127.0.0.1
  SLUICE_HTTP_PORT="$http_port" SLUICE_GRPC_PORT="$grpc_port"
  SLUICE_IO_THREADS=2 SLUICE_WORKERS=1 SLUICE_DRAIN_GRACE_MS=$GRACE_MS SLUICE_DRAIN_TIMEOUT_MS=$DRAIN_MS)
node_bin=$(command -v node)
(cd "$app" && exec "${as_image_user[@]}" "${image_env[@]}" "$node_bin" dist/src/main.js) >"$work/server.log" 2>&1 &
pid=$!

base="http://127.0.0.1:$http_port"
ready=""
for _ in $(seq 1 240); do
  kill -0 "$pid" 2>/dev/null || fail "the server exited during start-up"
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/v2/health/ready")" = 200 ]; then ready=1; break; fi
  sleep 0.25
done
[ -n "$ready" ] || fail "not ready within 60 s"
echo "ready"
# uWebSockets.js falls back to a slow JavaScript server when its binary does not load.
! grep -q "Falling back to a NodeJS implementation" "$work/server.log" || fail "uWebSockets.js is not using its native binary"

(cd "$app" && "${as_image_user[@]}" "${image_env[@]}" "$node_bin" scripts/image/healthcheck.mjs) || fail "the HEALTHCHECK command exited $?"
echo "healthcheck: exit 0"

features=$(node -e 'console.log(JSON.stringify({inputs:[{name:"features",datatype:"FP32",shape:[1,100],data:Array(100).fill(0.01)}]}))')
infer() {
  curl -sf "$base/v2/models/$1/infer" -H 'content-type: application/json' -d "$features" || fail "inference on $1 failed"
}
# demo-logistic: sigmoid(0.01 * sum(w) + 0.25) with w[i] = ((i % 7) - 3) / 10, sum(w) = -0.5.
infer demo-logistic | node -e '
  const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const want = 1 / (1 + Math.exp(-(0.01 * -0.5 + 0.25)));
  const got = r.outputs[0].data[0];
  if (Math.abs(got - want) > 1e-5) { console.error(`demo-logistic: got ${got}, want ${want}`); process.exit(1); }
  console.log(`demo-logistic: ${got} (want ${want.toFixed(7)})`);' || fail "demo-logistic answered wrong"
infer demo-onnx | node -e '
  const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const p = r.outputs[0].data[0];
  if (!(p > 0 && p < 1) || r.outputs[0].shape.join() !== "1,1") { console.error("demo-onnx:", JSON.stringify(r)); process.exit(1); }
  console.log(`demo-onnx: ${p}`);' || fail "demo-onnx answered wrong"

# The dashboard's page and assets are read from the tree at run time (src/dashboard-page/, uPlot
# from node_modules): a copy list that misses one shows here, not in a cluster.
for asset in /dashboard /dashboard/assets/app.js /dashboard/assets/style.css /dashboard/assets/uplot.js /dashboard/assets/uplot.css; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base$asset")
  [ "$code" = 200 ] || fail "GET $asset answered $code"
done
echo "dashboard: page and assets 200"

echo "== image check: SIGTERM"
limit_ms=$((GRACE_MS + DRAIN_MS + CLOSE_MARGIN_MS))
t0=$(date +%s%3N)
kill -TERM "$pid"
while kill -0 "$pid" 2>/dev/null; do
  [ $(($(date +%s%3N) - t0)) -le "$limit_ms" ] || fail "still running ${limit_ms} ms after SIGTERM"
  sleep 0.1
done
rc=0
wait "$pid" || rc=$?
pid=""
elapsed=$(($(date +%s%3N) - t0))
[ "$rc" -eq 0 ] || fail "exit code $rc after SIGTERM"
grep -q '"sluice: stopped"' "$work/server.log" || fail "no 'sluice: stopped' line in the log"
echo "stopped: exit 0 in ${elapsed} ms (grace ${GRACE_MS} ms + drain timeout ${DRAIN_MS} ms + margin ${CLOSE_MARGIN_MS} ms allowed)"
echo "== image check: OK"
