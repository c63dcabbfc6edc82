#!/usr/bin/env bash
# The release build as the production image runs it: the Dockerfile's runtime stage laid out
# from `make build`'s outputs (scripts/dockerfile-runtime.py checks the Dockerfile on the way),
# started, and driven by the browser tests tagged @smoke.
set -euo pipefail
cd "$(dirname "$0")/.."
root="${CARGO_TARGET_DIR:-target}/image-root"
layout=$(scripts/dockerfile-runtime.py "$root")
eval "$layout"
exec scripts/with-server.sh bash -c 'cd end2end && npx playwright test --grep @smoke "$@"' smoke "$@"
