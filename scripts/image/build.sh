#!/usr/bin/env bash
# Builds Sluice's runtime tree from a clean copy of the source (the Docker build context, or
# `git archive` as scripts/image/check.sh does): the Rust addon from source with cargo, the
# TypeScript, then production dependencies only. The Dockerfile's build stage runs exactly this,
# and CI runs it through check.sh, so the image's build is tested without a Docker engine.
#
#   scripts/image/build.sh OUT_DIR
#
# OUT_DIR (empty or missing) receives what `node dist/src/main.js` needs and nothing else:
#   package.json, package-lock.json   (src/paths.ts finds the project root by package.json)
#   dist/src/                         the compiled server and CLI
#   src/**/ non-TypeScript files      read at run time (registry migrations *.sql, ...)
#   native/sluice-native.node         the addon
#   node_modules/                     production dependencies (`npm prune --omit=dev`)
#   proto/, models/                   gRPC definitions, the bundled demo models
#   scripts/image/healthcheck.mjs     the image's HEALTHCHECK
# CARGO_TARGET_DIR is honoured (check.sh reuses the checkout's compiled dependencies with it).
set -euo pipefail

out=${1:?usage: scripts/image/build.sh OUT_DIR}
src=$(cd "$(dirname "$0")/../.." && pwd)
cd "$src"

# `npm ci` deletes node_modules and `npm prune` removes the dev tools: never do that to a
# developer's checkout.
if [ -e .git ]; then
  echo "build.sh: $src is a git checkout; run it on a clean copy (scripts/image/check.sh does)" >&2
  exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -n "$(ls -A "$out")" ]; then
  echo "build.sh: $out is not empty" >&2
  exit 2
fi
case "$out/" in "$src"/*) echo "build.sh: OUT_DIR must be outside the source tree" >&2; exit 2 ;; esac

echo "== build.sh: npm ci (no dependency scripts)"
# --ignore-scripts: no dependency needs its install script (README, Dependencies), and
# onnxruntime-node's would download CUDA providers from NuGet (its CPU binary ships in the
# package). npm 11 denies them through package.json's allowScripts; the node:20 images carry
# npm 10, which would run them. The project's own build steps run explicitly below.
npm ci --ignore-scripts --no-audit --no-fund

echo "== build.sh: native addon (cargo, release)"
npm run build:native

echo "== build.sh: TypeScript"
npm run build:ts

echo "== build.sh: production dependencies only"
npm prune --omit=dev --ignore-scripts --no-audit --no-fund

echo "== build.sh: other platforms' prebuilt binaries removed"
# onnxruntime-node and uWebSockets.js ship binaries for every OS, CPU and Node ABI (~330 MB of
# the ~520 MB). The image runs on the same platform and Node version it is built on (one
# NODE_VERSION for both stages); check.sh's inferences load both remaining binaries.
node --input-type=module -e '
  import { readdirSync, rmSync } from "node:fs";
  const { platform, arch } = process;
  const ort = "node_modules/onnxruntime-node/bin/napi-v6";
  for (const os of readdirSync(ort)) {
    if (os !== platform) { rmSync(`${ort}/${os}`, { recursive: true }); continue; }
    for (const a of readdirSync(`${ort}/${os}`)) if (a !== arch) rmSync(`${ort}/${os}/${a}`, { recursive: true });
  }
  const uws = "node_modules/uWebSockets.js/binaries";
  const keep = `uws_${platform}_${arch}_${process.versions.modules}.node`;
  if (!readdirSync(uws).includes(keep) || !readdirSync(`${ort}/${platform}`).includes(arch)) {
    console.error(`build.sh: no uWebSockets.js or onnxruntime-node binary for ${platform}/${arch}, Node ABI ${process.versions.modules}`);
    process.exit(1);
  }
  for (const f of readdirSync(uws)) if (f !== keep) rmSync(`${uws}/${f}`);
'

echo "== build.sh: runtime tree in $out"
cp -a package.json package-lock.json node_modules proto models "$out/"
mkdir -p "$out/dist" "$out/native" "$out/scripts/image"
cp -a dist/src "$out/dist/src"
cp -a native/sluice-native.node "$out/native/"
cp -a scripts/image/healthcheck.mjs "$out/scripts/image/"
# Files the server reads beside its sources (tsc copies only .ts output): migrations, and any
# static asset a later feature keeps under src/.
(cd src && find . -type f ! -name '*.ts' -print0) | while IFS= read -r -d '' f; do
  mkdir -p "$out/src/$(dirname "$f")"
  cp -a "src/$f" "$out/src/$f"
done
du -sh "$out" | sed 's/^/build.sh: runtime tree size /'
