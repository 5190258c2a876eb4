#!/bin/bash
# Server CPU per single-row demo-logistic JSON request, two builds interleaved (the order
# alternates each round). Each run: the engine + HTTP front end of one tree (its dist/), 3 s of
# warm-up, then <secs> s at <rate> req/s from the open-loop harness; CPU from /proc/<pid>/stat
# (user and sys ticks). Compare the medians of the two trees' rows.
# usage: scripts/ab/cpu-per-request.sh <treeA> <treeB> [rounds=8] [rate=4000] [secs=8]
set -u
here=$(cd "$(dirname "$0")" && pwd)
loadtest="$here/../../dist/loadtest/cli.js"
a=$1; b=$2; rounds=${3:-8}; rate=${4:-4000}; secs=${5:-8}
run() {
  local tree=$1 port=$2 out
  out=$(mktemp -d)
  SLUICE_LOG_LEVEL=warn node "$here/serve-engine-http.mjs" "$tree" "$port" > "$out/log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do grep -q ready "$out/log" 2>/dev/null && break; sleep 0.1; done
  node "$loadtest" --url "http://127.0.0.1:$port" --model demo-logistic --rate "$rate" --duration 3 --report "$out/warm.json" >/dev/null 2>&1
  local t0 t1
  t0=$(awk '{print $14" "$15}' "/proc/$pid/stat")
  node "$loadtest" --url "http://127.0.0.1:$port" --model demo-logistic --rate "$rate" --duration "$secs" --report "$out/run.json" >/dev/null 2>&1
  t1=$(awk '{print $14" "$15}' "/proc/$pid/stat")
  local n
  n=$(node -e "const r=require('$out/run.json'); console.log(r.answered, r.errorCount, r.latencyMs?.p99)" 2>/dev/null)
  kill "$pid"; wait "$pid" 2>/dev/null
  set -- $t0 $t1
  echo "$tree user_ticks=$(( $3-$1 )) sys_ticks=$(( $4-$2 )) answered/errors/p99_ms: $n"
  rm -rf "$out"
}
for i in $(seq 1 "$rounds"); do
  if [ $((i % 2)) = 1 ]; then run "$a" $((18600 + i * 4)); run "$b" $((18602 + i * 4));
  else run "$b" $((18602 + i * 4)); run "$a" $((18600 + i * 4)); fi
done
