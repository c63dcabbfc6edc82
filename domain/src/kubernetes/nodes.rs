//! The cluster's nodes as `/system/status` reports them (upstream's `getNodesInfo` and
//! `getMetricsInfo`): allocatable capacity, what non-finished pods request, and use from
//! `metrics.k8s.io`. Pure functions over the listed objects, tested without a cluster.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use model::service::quantity;
use model::system::{NodeCondition, NodeResource, NodeStatus};

/// Labels that mark control-plane nodes, which run no jobs when workers exist.
const CONTROL_PLANE_LABELS: [&str; 2] = [
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
];
const INTERLINK_LABEL: (&str, &str) = ("virtual-node.interlink/type", "virtual-kubelet");
const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// A node's current use from `metrics.k8s.io`: (millicores, bytes).
pub type Usage = HashMap<String, (i64, i64)>;

/// Worker nodes (control-plane ones only when there is nothing else), with what the pods on
/// each request and, where metrics are known, use.
pub fn statuses(nodes: &[Node], pods: &[Pod], usage: &Usage) -> Vec<NodeStatus> {
    let workers: Vec<&Node> = nodes.iter().filter(|n| !control_plane(n)).collect();
    let eligible = if workers.is_empty() {
        nodes.iter().collect()
    } else {
        workers
    };
    let mut requests: HashMap<&str, (i64, i64)> = HashMap::new();
    for pod in pods {
        let (Some(spec), phase) = (
            &pod.spec,
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        ) else {
            continue;
        };
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue;
        }
        if let Some(node) = spec.node_name.as_deref() {
            let (cpu, memory) = pod_requests(&spec.containers, spec.init_containers.as_deref());
            let total = requests.entry(node).or_default();
            total.0 += cpu;
            total.1 += memory;
        }
    }
    eligible
        .into_iter()
        .map(|node| {
            let name = node.metadata.name.clone().unwrap_or_default();
            let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
            let amount = |resource: &str, scale: f64| {
                allocatable
                    .and_then(|a| a.get(resource))
                    .map_or(0, |q| value(&q.0, scale))
            };
            let (request_cpu, request_memory) =
                requests.get(name.as_str()).copied().unwrap_or_default();
            let (usage_cpu, usage_memory) = usage.get(&name).copied().unwrap_or_default();
            let conditions: Vec<NodeCondition> = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .map(|c| NodeCondition {
                    kind: c.type_.clone(),
                    status: c.status == "True",
                })
                .collect();
            let status = match conditions.iter().find(|c| c.kind == "Ready") {
                Some(ready) if ready.status => "Ready",
                Some(_) => "NotReady",
                None => "Unknown",
            };
            NodeStatus {
                cpu: NodeResource {
                    capacity_cores: amount("cpu", 1000.0),
                    usage_cores: usage_cpu,
                    request_cores: request_cpu,
                    ..Default::default()
                },
                memory: NodeResource {
                    capacity_bytes: amount("memory", 1.0),
                    usage_bytes: usage_memory,
                    request_bytes: request_memory,
                    ..Default::default()
                },
                gpu: amount(GPU_RESOURCE, 1.0),
                is_interlink: labels(node)
                    .get(INTERLINK_LABEL.0)
                    .is_some_and(|v| v == INTERLINK_LABEL.1),
                status: status.into(),
                conditions,
                name,
            }
        })
        .collect()
}

/// What a pod asks the scheduler for: its containers together, or its heaviest ordinary
/// init container if that is more, plus its sidecars (init containers that keep running).
fn pod_requests(containers: &[Container], init: Option<&[Container]>) -> (i64, i64) {
    let (mut app, mut sidecars, mut heaviest_init) = ((0, 0), (0, 0), (0, 0));
    for container in containers {
        let (cpu, memory) = container_requests(container);
        app.0 += cpu;
        app.1 += memory;
    }
    for container in init.unwrap_or_default() {
        let (cpu, memory) = container_requests(container);
        if container.restart_policy.as_deref() == Some("Always") {
            sidecars.0 += cpu;
            sidecars.1 += memory;
        } else {
            heaviest_init.0 = heaviest_init.0.max(cpu);
            heaviest_init.1 = heaviest_init.1.max(memory);
        }
    }
    (
        app.0.max(heaviest_init.0) + sidecars.0,
        app.1.max(heaviest_init.1) + sidecars.1,
    )
}

fn container_requests(container: &Container) -> (i64, i64) {
    let requests = container
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref());
    let get = |name: &str, scale: f64| {
        requests
            .and_then(|r| r.get(name))
            .map_or(0, |q| value(&q.0, scale))
    };
    (get("cpu", 1000.0), get("memory", 1.0))
}

/// A quantity in `scale`ths of its base unit (1000 for millicores); 0 when unreadable.
pub fn value(text: &str, scale: f64) -> i64 {
    quantity::parse(text).map_or(0, |v| (v * scale).round() as i64)
}

fn control_plane(node: &Node) -> bool {
    let labels = labels(node);
    CONTROL_PLANE_LABELS.iter().any(|l| labels.contains_key(*l))
}

fn labels(node: &Node) -> &BTreeMap<String, String> {
    static NONE: BTreeMap<String, String> = BTreeMap::new();
    node.metadata.labels.as_ref().unwrap_or(&NONE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: serde_json::Value, ready: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "status": {
                "allocatable": {"cpu": "3800m", "memory": "8Gi", "nvidia.com/gpu": "2"},
                "conditions": [{"type": "MemoryPressure", "status": "False"},
                               {"type": "Ready", "status": ready}]
            }
        }))
        .unwrap()
    }

    fn pod(node: &str, phase: &str, containers: serde_json::Value, init: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": node, "containers": containers, "initContainers": init},
            "status": {"phase": phase}
        }))
        .unwrap()
    }

    fn asks(cpu: &str, memory: &str) -> serde_json::Value {
        json!({"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}})
    }

    #[test]
    fn workers_report_capacity_requests_and_use() {
        let nodes = [
            node(
                "cp",
                json!({"node-role.kubernetes.io/control-plane": ""}),
                "True",
            ),
            node("w1", json!({}), "True"),
            node(
                "w2",
                json!({"virtual-node.interlink/type": "virtual-kubelet"}),
                "False",
            ),
        ];
        let pods = [
            pod(
                "w1",
                "Running",
                json!([asks("500m", "1Gi"), asks("0.25", "256Mi")]),
                json!([]),
            ),
            // A classic init container heavier than the app counts instead of it; a sidecar
            // (restartPolicy Always) adds to it.
            pod(
                "w1",
                "Pending",
                json!([asks("100m", "100Mi")]),
                json!([asks("1", "64Mi"),
                       {"name": "s", "restartPolicy": "Always",
                        "resources": {"requests": {"cpu": "50m", "memory": "10Mi"}}}]),
            ),
            pod("w1", "Succeeded", json!([asks("4", "4Gi")]), json!([])),
        ];
        let usage = Usage::from([("w1".to_string(), (1200, 3 << 30))]);
        let statuses = statuses(&nodes, &pods, &usage);
        assert_eq!(
            statuses.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["w1", "w2"],
            "the control plane is left out while workers exist"
        );
        let w1 = &statuses[0];
        assert_eq!(w1.cpu.capacity_cores, 3800);
        assert_eq!(w1.cpu.request_cores, 750 + 1000 + 50);
        assert_eq!(w1.cpu.usage_cores, 1200);
        assert_eq!(w1.memory.capacity_bytes, 8 << 30);
        assert_eq!(
            w1.memory.request_bytes,
            (1 << 30) + (256 << 20) + (100 << 20) + (10 << 20)
        );
        assert_eq!(w1.memory.usage_bytes, 3 << 30);
        assert_eq!(w1.gpu, 2);
        assert_eq!((w1.status.as_str(), w1.is_interlink), ("Ready", false));
        let w2 = &statuses[1];
        assert_eq!((w2.status.as_str(), w2.is_interlink), ("NotReady", true));
        assert_eq!((w2.cpu.usage_cores, w2.cpu.request_cores), (0, 0));
        assert_eq!(w2.conditions.len(), 2);
    }

    #[test]
    fn a_cluster_of_control_planes_reports_them() {
        let nodes = [node(
            "solo",
            json!({"node-role.kubernetes.io/master": ""}),
            "True",
        )];
        assert_eq!(statuses(&nodes, &[], &Usage::new()).len(), 1);
    }
}
