#!/usr/bin/env bash
# The OpenAPI document against third-party tools and the real server: openapi-spec-validator
# validates $BASE_URL/openapi.json as OpenAPI 3.1, then schemathesis fuzzes every documented
# operation as the admin and fails on any 5xx (tests/api/check.py). Arguments go to
# `schemathesis run`, e.g. tests/api/run.sh --include-path-regex '^/system/'.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${OSCAR_API_VENV:-$HOME/.cache/oscar/api-venv}"
exec scripts/with-server.sh "$venv/bin/python" tests/api/check.py "$@"
