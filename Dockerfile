# syntax=docker/dockerfile:1
# Sluice's container image (README: Running in a container / on Kubernetes).
#   docker build -t sluice:0.1.0 .
#   docker run --read-only -p 8000:8000 -p 8001:8001 sluice:0.1.0
# The build stage runs scripts/image/build.sh, the one build script, which CI also runs on a clean
# copy of the source (scripts/image/check.sh): this file only adds the toolchain and the runtime's
# user, settings and health check. A test (test/image/dockerfile.test.ts) checks its statements
# against the project.
#
# Official Node images pinned by version tag, the Node CI uses. Not by digest: no registry is
# reachable from the machines this was written on, so no digest could be read and checked; pin
# one with `docker buildx imagetools inspect node:20.20.2-bookworm-slim` where one is.
ARG NODE_VERSION=20.20.2

FROM node:${NODE_VERSION}-bookworm AS build
# Rust from rustup, pinned (Debian bookworm's cargo 1.63 is too old for napi-rs 3); the full
# bookworm image already has gcc, curl and git.
ARG RUST_VERSION=1.95.0
ENV RUSTUP_HOME=/opt/rustup CARGO_HOME=/opt/cargo PATH=/opt/cargo/bin:$PATH
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --no-modify-path --profile minimal --default-toolchain "${RUST_VERSION}"
WORKDIR /src
COPY . .
# The caches only speed up rebuilds (npm's downloads, crates, compiled dependencies); build.sh
# works without them.
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=cache,target=/opt/cargo/registry \
    --mount=type=cache,target=/src/native/target \
    scripts/image/build.sh /app

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
RUN groupadd --system --gid 10001 sluice \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin sluice \
 && mkdir /data && chown 10001:10001 /data
WORKDIR /app
# Owned by root and not writable by the server's user: the tree stays read-only even without
# `--read-only`. Only /data is written (embedded registry, local artifacts, the feedback log).
COPY --from=build --chown=root:root /app /app
ENV SLUICE_DATA_DIR=/data \
    SLUICE_HTTP_HOST=0.0.0.0 \
    SLUICE_GRPC_HOST=0.0.0.0 \
    SLUICE_HTTP_PORT=8000 \
    SLUICE_GRPC_PORT=8001
VOLUME /data
USER 10001:10001
EXPOSE 8000 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "scripts/image/healthcheck.mjs"]
# SIGTERM drains (README, Shutdown): readiness false for SLUICE_DRAIN_GRACE_MS while still serving,
# then in-flight requests finish within SLUICE_DRAIN_TIMEOUT_MS; `docker stop -t 20` covers the
# defaults (5 s + 10 s). Exec form: node is PID 1 and receives the signal itself.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/main.js"]
