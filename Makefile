# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# Builds live outside the work tree so they survive fresh clones (CI, new sessions).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/oscar/target
export PATH := $(HOME)/.cargo/bin:$(CURDIR)/node_modules/.bin:$(PATH)
# Incremental caches pile up per feature set and help neither CI nor a first build.
export CARGO_INCREMENTAL ?= 0
SERVER := $(CARGO_TARGET_DIR)/debug/server
CARGO_TEST := $(shell command -v cargo-nextest >/dev/null && echo "cargo nextest run" || echo "cargo test")

# Never `--workspace` for native builds: it would compile `frontend` too and unify app's
# `hydrate` and `ssr` features. Native commands use the default members; the wasm crate is
# checked on its own target.
.PHONY: run test build e2e clients api bench bench-served tools test-tools site unit manifests lint \
	help reliability reliability-ci load fuzz release-smoke screenshots

help:
	@echo "make run    - build and serve the dashboard in embedded mode on http://127.0.0.1:3000"
	@echo "make test   - every test layer: lint, unit + integration (SQLite and PostgreSQL), browser"
	@echo "make build  - what the image ships: release server, optimised site, static supervisor"
	@echo "make e2e    - browser tests only"
	@echo "make screenshots - the README's screenshots (docs/screenshots), taken by the browser suite"
	@echo "make release-smoke - browser smoke tests on make build's output, laid out as the image"
	@echo "make clients - oscar-python (PyPI) against the real server"
	@echo "make api   - the OpenAPI document validated, then every operation fuzzed (schemathesis): no 5xx"
	@echo "make bench  - benchmarks (results go in BENCHMARKS.md)"
	@echo "make bench-served - uploads and job starts through the servers make run and make build make"
	@echo "make reliability - crash, outage and fault drills in full (results go in RELIABILITY.md)"
	@echo "make load   - 5-minute load test: 50 dashboard users + 200 concurrent uploads"
	@echo "make fuzz   - every fuzz target for FUZZ_SECONDS (600) each, nightly toolchain"

tools:
	@scripts/install-tools.sh

test-tools: tools
	@scripts/install-test-tools.sh

# Debug server (its dependencies optimised: Cargo.toml) + wasm site: what `run` serves and
# what the browser tests drive.
site: tools
	cargo leptos build --cargo-locked

RELEASE := $(CARGO_TARGET_DIR)/release
# The supervisor runs inside users' images (glibc or musl alike), so it is linked statically.
STATIC := $(shell uname -m)-unknown-linux-musl

# Jobs run the static supervisor, as in the image (Dockerfile): a small static program starts
# in about half the time of this server's own `supervise` (BENCHMARKS.md).
run: site
	cargo build --locked -p supervisor --target $(STATIC)
	OSCAR_SUPERVISOR="$${OSCAR_SUPERVISOR:-$(CARGO_TARGET_DIR)/$(STATIC)/debug/oscar-supervisor}" \
	  LEPTOS_SITE_ROOT=target/site exec $(SERVER)

# What the production image ships, and all the Dockerfile builds with: the release server,
# the optimised site beside it (not in target/site, which `make run` serves) and the static
# supervisor that Kubernetes jobs run.
build: tools
	@[ -x node_modules/.bin/wasm-opt ] || npm ci --no-audit --no-fund --loglevel=error
	LEPTOS_SITE_ROOT=$(RELEASE)/site cargo leptos build --release --cargo-locked
	cargo build --release --locked -p supervisor --target $(STATIC)
	install -D $(CARGO_TARGET_DIR)/$(STATIC)/release/oscar-supervisor $(RELEASE)/static/oscar-supervisor

# `make build`'s output laid out as the Dockerfile's runtime stage (checking the Dockerfile),
# started, and driven by the browser tests tagged @smoke: a release-only failure fails CI.
release-smoke: test-tools build
	scripts/release-smoke.sh

lint: test-tools
	hadolint Dockerfile
	cargo fmt --all --check
	cargo clippy --all-targets --locked -- -D warnings
	cargo clippy -p frontend --target wasm32-unknown-unknown --locked -- -D warnings

# The unit tests also write the Kubernetes objects the builders make; `manifests` checks them.
MANIFESTS := $(CARGO_TARGET_DIR)/manifests

unit: test-tools
	rm -rf $(MANIFESTS)
	url="$$(scripts/postgres.sh)"; \
	TEST_DATABASE_URL="$$url" OSCAR_REQUIRE_POSTGRES=1 OSCAR_MANIFESTS_DIR=$(MANIFESTS) $(CARGO_TEST) --locked

manifests: test-tools
	scripts/validate-manifests.sh $(MANIFESTS)

e2e: test-tools site
	end2end/run.sh

# The README's screenshots, taken by the browser suite into docs/screenshots.
screenshots: test-tools site
	OSCAR_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots end2end/run.sh docs.spec.ts

# The official OSCAR clients (oscar-python from PyPI) against the real server.
clients: test-tools site
	tests/clients/run.sh

# The served OpenAPI document (openapi-spec-validator, then schemathesis: no 5xx), tests/api.
api: test-tools site
	tests/api/run.sh

# Drills against the real server binary, counting lost and duplicated work (RELIABILITY.md).
# `make test` runs them smaller, on the debug server the browser tests use.
reliability-ci: test-tools site
	cargo build --locked -p reliability
	url="$$(scripts/postgres.sh)"; \
	$(CARGO_TARGET_DIR)/debug/reliability --server $(SERVER) --scale ci --postgres "$$url"

reliability: test-tools build
	cargo build --release --locked -p reliability
	url="$$(scripts/postgres.sh)"; \
	$(RELEASE)/reliability --server $(RELEASE)/server --scale full --postgres "$$url" \
	  | tee $(CARGO_TARGET_DIR)/reliability.md

load: build
	cargo build --release --locked -p reliability
	$(RELEASE)/reliability --server $(RELEASE)/server load | tee $(CARGO_TARGET_DIR)/load.md

FUZZ_SECONDS ?= 600
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

test: lint unit manifests e2e clients api reliability-ci release-smoke

# Jobs run the static supervisor the image ships, as the server the image runs does.
bench: tools
	cargo build --release --locked -p supervisor --target $(STATIC)
	OSCAR_SUPERVISOR=$(CARGO_TARGET_DIR)/$(STATIC)/release/oscar-supervisor \
	  cargo bench -p server --bench foundation --bench jobs --bench uploads --bench kubernetes --locked

# Through the real listeners: the server `make run` serves against the release server.
bench-served: site build
	cargo build --release --locked -p reliability
	$(RELEASE)/reliability --server $(SERVER) served --baseline $(RELEASE)/server \
	  | tee $(CARGO_TARGET_DIR)/served.md
