#!/usr/bin/env bash
# Validates the Kubernetes objects the unit tests wrote (the platform's builders) against the
# Kubernetes 1.33 schemas, offline, rejecting unknown fields. No cluster is needed or used.
set -euo pipefail
dir="${1:?usage: validate-manifests.sh DIR}"
shopt -s nullglob
files=("$dir"/*.yaml)
if [ "${#files[@]}" -eq 0 ]; then
  echo "validate-manifests: no manifests in $dir; run 'make unit' first" >&2
  exit 1
fi
kubernetes-validate -k 1.33.0 --strict --quiet "${files[@]}"
echo "validate-manifests: ${#files[@]} manifest(s) valid for Kubernetes 1.33"
