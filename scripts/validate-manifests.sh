#!/usr/bin/env bash
# Validates every Kubernetes object the platform makes or ships, offline (no cluster is
# needed or used), against the Kubernetes 1.33 schemas, rejecting unknown fields:
# - what the executor's builders make (the unit tests write examples into DIR);
# - deploy/kubernetes: each overlay rendered with kustomize (pinned kubectl), into DIR too.
# The Gateway API HTTPRoute is a CRD, absent from those schemas: its backends are checked
# against the rendered Services instead. The jobs' NetworkPolicy is checked against the
# settings (the store's address, the API port).
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
# The builders' HTTPRoutes (a CRD: no schema above), against the Gateway API v1 rules they use.
python3 - "${built[@]}" <<'PY'
import sys, yaml
for path in sys.argv[1:]:
    route = yaml.safe_load(open(path))
    if route["kind"] != "HTTPRoute":
        continue
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1", path
    assert set(route) == {"apiVersion", "kind", "metadata", "spec"}, path
    assert set(route["spec"]) <= {"parentRefs", "hostnames", "rules"}, path
    assert all(set(p) <= {"name", "namespace"} for p in route["spec"]["parentRefs"]), path
    for rule in route["spec"]["rules"]:
        assert set(rule) <= {"matches", "filters", "backendRefs"}, path
        for backend in rule["backendRefs"]:
            assert set(backend) == {"name", "port"} and 1 <= backend["port"] <= 65535, path
        for f in rule.get("filters", []):
            # ReplacePrefixMatch is valid only on PathPrefix matches.
            assert f["type"] == "URLRewrite" and f["urlRewrite"]["path"]["type"] == "ReplacePrefixMatch", path
            assert all(m["path"]["type"] == "PathPrefix" for m in rule["matches"]), path
PY
echo "validate-manifests: ${#built[@]} builder manifest(s) valid for Kubernetes 1.33"

rendered="$dir/deploy"
rm -rf "$rendered" && mkdir -p "$rendered"
for kustomization in deploy/kubernetes/base deploy/kubernetes/overlays/*; do
  out="$rendered/$(basename "$kustomization").yaml"
  "$kubectl" kustomize "$kustomization" > "$out"
done
# Components no overlay uses, each on the base.
for component in deploy/kubernetes/components/jobs-internet deploy/kubernetes/components/prometheus; do
  on_base="$dir/on-base-$(basename "$component")"
  rm -rf "$on_base" && mkdir -p "$on_base"
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\ncomponents:\n  - %s\n' \
    "$(realpath --relative-to="$on_base" deploy/kubernetes/base)" \
    "$(realpath --relative-to="$on_base" "$component")" > "$on_base/kustomization.yaml"
  "$kubectl" kustomize "$on_base" > "$rendered/base-$(basename "$component").yaml"
done
deployed=("$rendered"/*.yaml)
# Warnings name the HTTPRoute (no schema); failures still fail.
kubernetes-validate -k 1.33.0 --strict --quiet --no-warn "${deployed[@]}"
python3 - "${deployed[@]}" <<'PY'
import sys, yaml
from urllib.parse import urlparse
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
    # A ServiceMonitor scrapes a port the Service it selects has, with the server's token.
    for monitor in (d for d in docs if d["kind"] == "ServiceMonitor"):
        selected = [s for s in services.values()
                    if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"].get("labels", {}).items()]
        assert selected, f"{path}: ServiceMonitor {monitor['metadata']['name']} selects no Service"
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in [p.get("name") for s in selected for p in s["spec"]["ports"]], f"{path}: no port {endpoint['port']}"
            assert endpoint["bearerTokenSecret"]["key"] == "OSCAR_METRICS_TOKEN", f"{path}: the scraper has no token"
    # The jobs' NetworkPolicy follows the settings: in the jobs' namespace, its store rule
    # on the store's namespace and port, and never the server's API port.
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "oscar")["data"]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "oscar-jobs"]
    assert len(policies) == 1, f"{path}: no NetworkPolicy oscar-jobs"
    policy = policies[0]
    assert policy["metadata"]["namespace"] == config["OSCAR_KUBE_NAMESPACE"], f"{path}: oscar-jobs is not in the jobs' namespace"
    assert not policy["spec"].get("ingress") and "Ingress" in policy["spec"]["policyTypes"], f"{path}: jobs accept connections"
    store = urlparse(config.get("OSCAR_JOB_S3_ENDPOINT") or config["OSCAR_S3_ENDPOINT"])
    store_ns = store.hostname.split(".")[1]
    rule = policy["spec"]["egress"][1]
    assert [p["port"] for p in rule["ports"]] == [store.port], f"{path}: the store rule is not on port {store.port}"
    assert [t["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for t in rule["to"]] == [store_ns], f"{path}: the store rule is not to namespace {store_ns}"
    api_port = int(config["OSCAR_LISTEN"].rsplit(":", 1)[1])
    open_ports = [p["port"] for r in policy["spec"]["egress"] for p in r.get("ports", [])]
    assert api_port not in open_ports, f"{path}: jobs may reach port {api_port}"
    # Address ranges (the Internet) leave out those of the cluster and the cloud's metadata.
    for block in (t["ipBlock"] for r in policy["spec"]["egress"] for t in r["to"] if "ipBlock" in t):
        if ":" not in block["cidr"]:
            private = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}
        else:
            private = {"fc00::/7", "fe80::/10"}
        assert private <= set(block.get("except", [])), f"{path}: {block['cidr']} includes the cluster's addresses"
PY
echo "validate-manifests: ${#deployed[@]} deploy/kubernetes rendering(s) valid for Kubernetes 1.33"
