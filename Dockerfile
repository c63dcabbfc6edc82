# Production image: release server + optimised site + the static job supervisor that the
# Kubernetes executor copies into every job's pod. The build steps are those `make build`
# runs on our machines (no Docker engine there, so CI lints this file but cannot build it).
# Multi-arch: `docker buildx build --platform linux/amd64,linux/arm64` (README, ARM64 notes).

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# Node for the pinned wasm-opt (npm binaryen; Debian's binaryen breaks hydration); musl and
# cmake/clang for the static supervisor (aws-lc builds C).
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm musl-tools cmake clang \
    && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-unknown-unknown "$(uname -m)-unknown-linux-musl"
COPY scripts/install-tools.sh scripts/install-tools.sh
COPY Cargo.lock Cargo.lock
RUN scripts/install-tools.sh
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# Wasm and server are built in the same stage and path, so server function routes agree.
ENV PATH="/src/node_modules/.bin:${PATH}"
RUN cargo leptos build --release --cargo-locked
# Static: it runs inside users' images, glibc or musl (Alpine) alike.
RUN cargo build --release --locked -p supervisor --target "$(uname -m)-unknown-linux-musl" \
    && cp "target/$(uname -m)-unknown-linux-musl/release/oscar-supervisor" /src/oscar-supervisor

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/oscar oscar
WORKDIR /var/lib/oscar
COPY --from=builder /src/target/release/server /usr/local/bin/oscar-server
COPY --from=builder /src/target/site /usr/share/oscar/site
# Where jobs' init containers copy it from (app::server::kubernetes::SUPERVISOR_IN_IMAGE).
COPY --from=builder /src/oscar-supervisor /usr/local/bin/oscar-supervisor
USER 10001
ENV LEPTOS_SITE_ROOT=/usr/share/oscar/site \
    OSCAR_LISTEN=0.0.0.0:8080 \
    OSCAR_DATA_DIR=/var/lib/oscar/data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q Ok <&3"]
CMD ["oscar-server"]
