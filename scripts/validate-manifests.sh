#!/usr/bin/env bash
# Validates every Kubernetes object the platform makes or ships, offline (no cluster is
# needed or used), against the Kubernetes 1.33 schemas, rejecting unknown fields:
# - what the executor's builders make (the unit tests write examples into DIR);
# - deploy/kubernetes: each overlay rendered with kustomize (pinned kubectl), into DIR too.
# The Gateway API HTTPRoute is a CRD, absent from those schemas: its backends are checked
# against the rendered Services instead.
set -euo pipefail
dir="${1:?usage: validate-manifests.sh DIR}"
kubectl="${KUBECTL:-$HOME/.cache/oscar/kubectl-venv/bin/kubectl}"
shopt -s nullglob
built=("$dir"/*.yaml)
if [ "${#built[@]}" -eq 0 ]; then
  echo "validate-manifests: no manifests in $dir; run 'make unit' first" >&2
  exit 1
fi
kubernetes-validate -k 1.33.0 --strict --quiet --no-warn "${built[@]}"
echo "validate-manifests: ${#built[@]} builder manifest(s) valid for Kubernetes 1.33"

rendered="$dir/deploy"
rm -rf "$rendered" && mkdir -p "$rendered"
for kustomization in deploy/kubernetes/base deploy/kubernetes/overlays/*; do
  out="$rendered/$(basename "$kustomization").yaml"
  "$kubectl" kustomize "$kustomization" > "$out"
done
deployed=("$rendered"/*.yaml)
# Warnings name the HTTPRoute (no schema); failures still fail.
kubernetes-validate -k 1.33.0 --strict --quiet --no-warn "${deployed[@]}"
python3 - "${deployed[@]}" <<'PY'
import sys, yaml
for path in sys.argv[1:]:
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    services = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs if d["kind"] == "Service"}
    for route in (d for d in docs if d["kind"] in ("HTTPRoute", "Ingress")):
        ns = route["metadata"]["namespace"]
        if route["kind"] == "HTTPRoute":
            assert route["apiVersion"] == "gateway.networking.k8s.io/v1", path
            assert route["spec"].get("parentRefs"), f"{path}: HTTPRoute without parentRefs"
            backends = [(b["name"], b["port"]) for r in route["spec"]["rules"] for b in r["backendRefs"]]
        else:
            backends = [(p["backend"]["service"]["name"], p["backend"]["service"]["port"]["name"])
                        for r in route["spec"]["rules"] for p in r["http"]["paths"]]
        for name, port in backends:
            service = services.get((ns, name))
            assert service, f"{path}: {route['kind']} points at a missing Service {ns}/{name}"
            ports = [p["port"] for p in service["spec"]["ports"]] + [p.get("name") for p in service["spec"]["ports"]]
            assert port in ports, f"{path}: Service {ns}/{name} has no port {port}"
PY
echo "validate-manifests: ${#deployed[@]} deploy/kubernetes rendering(s) valid for Kubernetes 1.33"
