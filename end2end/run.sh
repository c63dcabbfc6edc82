#!/usr/bin/env bash
# The browser suite: Playwright in Debian's Chromium against the real server (embedded mode).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/with-server.sh bash -c 'cd end2end && npx playwright test "$@"' playwright "$@"
