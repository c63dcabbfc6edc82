# Production image: release server + optimised site. The build steps are those `make build`
# runs on our machines (no Docker engine there, so CI lints this file but cannot build it).

FROM rust:1.95-bookworm AS builder
WORKDIR /src
RUN rustup target add wasm32-unknown-unknown
# Node for the pinned wasm-opt (npm binaryen; Debian's binaryen breaks hydration).
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
COPY scripts/install-tools.sh scripts/install-tools.sh
COPY Cargo.lock Cargo.lock
RUN scripts/install-tools.sh
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# Wasm and server are built in the same stage and path, so server function routes agree.
ENV PATH="/src/node_modules/.bin:${PATH}"
RUN cargo leptos build --release --cargo-locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/oscar oscar
WORKDIR /var/lib/oscar
COPY --from=builder /src/target/release/server /usr/local/bin/oscar-server
COPY --from=builder /src/target/site /usr/share/oscar/site
USER 10001
ENV LEPTOS_SITE_ROOT=/usr/share/oscar/site \
    OSCAR_LISTEN=0.0.0.0:8080 \
    OSCAR_DATA_DIR=/var/lib/oscar/data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q Ok <&3"]
CMD ["oscar-server"]
