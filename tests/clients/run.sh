#!/usr/bin/env bash
# The official clients against the real server: oscar-python (PyPI) with pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${OSCAR_PY_VENV:-$HOME/.cache/oscar/clients-venv}"
exec scripts/with-server.sh "$venv/bin/python" -m pytest -q tests/clients "$@"
