#!/usr/bin/env bash
# Runs a command against the real server binary in embedded mode: a fresh data dir, free
# loopback ports, a random admin password, jobs in their images served by a registry on
# loopback (`test-registry`: busybox as alpine and the other images the tests name). The command sees BASE_URL, OSCAR_USERNAME,
# OSCAR_PASSWORD, the embedded store's S3_ENDPOINT, OSCAR_S3_ACCESS_KEY and
# OSCAR_S3_SECRET_KEY, and the test OpenID provider's OIDC_ISSUER. Serves what `make site`
# built, or SERVER_BIN with the site at LEPTOS_SITE_ROOT (the release smoke test).
set -euo pipefail
cd "$(dirname "$0")/.."

server_bin="${SERVER_BIN:-${CARGO_TARGET_DIR:-target}/debug/server}"
site_root="${LEPTOS_SITE_ROOT:-target/site}"
[ -x "$server_bin" ] || { echo "with-server: $server_bin is missing; run 'make site' first" >&2; exit 1; }
[ -d "$site_root/pkg" ] || { echo "with-server: $site_root/pkg is missing; run 'make site' first" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
port=$(free_port)
s3_port=$(free_port)
export OSCAR_USERNAME=oscar
export OSCAR_PASSWORD="test-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export BASE_URL="http://127.0.0.1:$port"
# The embedded store's keys, so tests can also upload straight to it (boto3, like users do).
export OSCAR_S3_ACCESS_KEY="test-access"
export OSCAR_S3_SECRET_KEY="test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export S3_ENDPOINT="http://127.0.0.1:$s3_port"
# A real OpenID provider (npm oidc-provider, end2end/oidc/op.mjs) with test users
# alice and bob in vo.example.eu and carol outside it.
op_port=$(free_port)
export OIDC_ISSUER="http://127.0.0.1:$op_port"
export OIDC_CLIENT_ID=oscar-dashboard OIDC_CLIENT_SECRET=oscar-dashboard-secret
export OIDC_REDIRECT_URL="$BASE_URL/auth/callback" OIDC_GROUPS=vo.example.eu
export OIDC_PROVIDER_NAME="EGI Check-In (test)"
OP_PORT=$op_port OP_REDIRECT_URIS="$OIDC_REDIRECT_URL" OP_POST_LOGOUT_URIS="$BASE_URL/login" \
  node end2end/oidc/op.mjs >"$work/op.log" 2>&1 &
op_pid=$!

cargo build --locked --quiet -p test-registry
"${CARGO_TARGET_DIR:-target}/debug/test-registry" >"$work/registry" 2>"$work/registry.log" &
registry_pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/registry" ] && break
  kill -0 "$registry_pid" 2>/dev/null || { echo "with-server: the registry exited:"; cat "$work/registry.log"; exit 1; }
  sleep 0.1
done
export OSCAR_REGISTRY_MIRRORS
OSCAR_REGISTRY_MIRRORS=$(cat "$work/registry")

OSCAR_DATA_DIR="$work/data" OSCAR_LISTEN="127.0.0.1:$port" OSCAR_S3_LISTEN="127.0.0.1:$s3_port" \
  LEPTOS_SITE_ROOT="$site_root" RUST_LOG="${RUST_LOG:-info}" \
  "$server_bin" >"$work/server.log" 2>&1 &
server_pid=$!
cleanup() {
  kill "$server_pid" "$op_pid" "$registry_pid" 2>/dev/null || true
  wait "$server_pid" "$op_pid" "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  curl -fsS "$BASE_URL/health" >/dev/null 2>&1 \
    && curl -fsS "$OIDC_ISSUER/.well-known/openid-configuration" >/dev/null 2>&1 && break
  kill -0 "$op_pid" 2>/dev/null || { echo "with-server: the OIDC provider exited:"; cat "$work/op.log"; exit 1; }
  kill -0 "$server_pid" 2>/dev/null || { echo "with-server: the server exited:"; cat "$work/server.log"; exit 1; }
  sleep 0.3
done

status=0
"$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "---- server log (last 100 lines) ----"
  tail -n 100 "$work/server.log"
fi
exit "$status"
