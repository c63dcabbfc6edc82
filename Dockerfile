# Production image: release server + optimised site + the static job supervisor that the
# Kubernetes executor copies into every job's pod, all built by `make build`, as on our
# machines. No Docker engine runs there: CI lints this file, checks what it copies, and runs
# the browser smoke tests on the runtime stage laid out from `make build`'s output
# (`make release-smoke`, scripts/dockerfile-runtime.py).
# Multi-arch: `docker buildx build --platform linux/amd64,linux/arm64` (README, ARM64 notes).

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# Node for the pinned wasm-opt (npm binaryen; Debian's binaryen breaks hydration); musl-tools
# for the static supervisor (aws-lc builds C).
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm musl-tools \
    && rm -rf /var/lib/apt/lists/*
# The build tools first, in their own layer: they change far less often than the code.
COPY Makefile Cargo.lock ./
COPY scripts/install-tools.sh scripts/install-tools.sh
RUN make tools
COPY . .
# Wasm and server are built in the same stage and path, so server function routes agree.
ENV CARGO_TARGET_DIR=/src/target
RUN make build

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates bubblewrap \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/oscar oscar
WORKDIR /var/lib/oscar
COPY --from=builder /src/target/release/server /usr/local/bin/oscar-server
COPY --from=builder /src/target/release/site /usr/share/oscar/site
# Where jobs' init containers copy it from (app::server::kubernetes::SUPERVISOR_IN_IMAGE).
COPY --from=builder /src/target/release/static/oscar-supervisor /usr/local/bin/oscar-supervisor
USER 10001
# Embedded-mode jobs run the static supervisor too: it starts faster than oscar-server's own.
ENV LEPTOS_SITE_ROOT=/usr/share/oscar/site \
    OSCAR_LISTEN=0.0.0.0:8080 \
    OSCAR_DATA_DIR=/var/lib/oscar/data \
    OSCAR_SUPERVISOR=/usr/local/bin/oscar-supervisor
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q Ok <&3"]
CMD ["oscar-server"]
