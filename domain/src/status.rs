//! `GET /system/status` (upstream's `StatusInfo`): the machines jobs run on with capacity,
//! requests and use, this server, and for the admin the jobs by state and the store's size.

use std::collections::BTreeMap;

use model::jobs::JobState;
use model::system::{
    ClusterMetrics, ClusterStatus, CpuMetrics, GpuMetrics, MemoryMetrics, NodeStatus, OidcStatus,
    OscarDeployment, OscarStatus, PodStates, Status, StoreStatus,
};
use model::{AppError, AppResult};

use crate::App;
use crate::access::Caller;
use crate::jobs::executor::Requested;

/// The whole status; the jobs and store parts are filled for the admin only, as upstream.
pub async fn status(app: &App, caller: &Caller) -> AppResult<Status> {
    let running = crate::quotas::running_of(&app.db, None).await?;
    let requested = Requested {
        cpu_millis: running.cpu_millis,
        memory_bytes: running.memory_bytes,
        gpus: 0,
    };
    let nodes = app
        .jobs
        .executor()
        .nodes(requested)
        .await
        .map_err(|reason| AppError::unavailable("the cluster's node list", reason))?;
    let (jobs_count, pods, minio) = if caller.admin {
        let (count, pods) = jobs_by_phase(app).await?;
        (count, pods, store_size(app).await?)
    } else {
        Default::default()
    };
    Ok(Status {
        cluster: ClusterStatus {
            nodes_count: nodes.len() as i64,
            metrics: totals(&nodes),
            nodes,
        },
        oscar: OscarStatus {
            deployment_name: "oscar".into(),
            ready: true,
            // This server: the numbers describe the one answering.
            deployment: OscarDeployment {
                available_replicas: 1,
                ready_replicas: 1,
                replicas: 1,
                creation_timestamp: app.info.started.rfc3339(),
                strategy: app.info.mode.clone(),
                labels: BTreeMap::from([
                    ("app".to_string(), "oscar".to_string()),
                    ("version".to_string(), app.info.version.clone()),
                ]),
            },
            jobs_count,
            pods,
            oidc: OidcStatus {
                enabled: app.oidc.is_some(),
                issuers: app
                    .oidc
                    .iter()
                    .map(|o| o.settings().issuer.clone())
                    .collect(),
                groups: app.vo_groups().to_vec(),
            },
        },
        minio,
    })
}

/// The cluster's free and schedulable CPU and memory, in total and on the best node.
fn totals(nodes: &[NodeStatus]) -> ClusterMetrics {
    let mut metrics = ClusterMetrics::default();
    for node in nodes {
        let free_cpu = node.cpu.capacity_cores - node.cpu.usage_cores;
        let free_memory = node.memory.capacity_bytes - node.memory.usage_bytes;
        let schedulable_cpu = node.cpu.capacity_cores - node.cpu.request_cores;
        let schedulable_memory = node.memory.capacity_bytes - node.memory.request_bytes;
        let CpuMetrics {
            total_free_cores,
            max_free_on_node_cores,
            total_schedulable_cores,
            total_schedulable_on_node_cores,
        } = &mut metrics.cpu;
        *total_free_cores += free_cpu;
        *max_free_on_node_cores = (*max_free_on_node_cores).max(free_cpu);
        *total_schedulable_cores += schedulable_cpu;
        *total_schedulable_on_node_cores = (*total_schedulable_on_node_cores).max(schedulable_cpu);
        let MemoryMetrics {
            total_free_bytes,
            max_free_on_node_bytes,
            total_schedulable_bytes,
            max_schedulable_on_node_bytes,
        } = &mut metrics.memory;
        *total_free_bytes += free_memory;
        *max_free_on_node_bytes = (*max_free_on_node_bytes).max(free_memory);
        *total_schedulable_bytes += schedulable_memory;
        *max_schedulable_on_node_bytes = (*max_schedulable_on_node_bytes).max(schedulable_memory);
        metrics.gpu = GpuMetrics {
            total_gpu: metrics.gpu.total_gpu + node.gpu,
        };
    }
    metrics
}

/// Every job record, and how many are in each pod phase upstream would count them under.
async fn jobs_by_phase(app: &App) -> AppResult<(i64, PodStates)> {
    let counts = crate::jobs::counts(&app.db, None, None).await?;
    let mut pods = PodStates::default();
    for (state, count) in counts {
        // Handed to another cluster: no pod of theirs is here.
        if state == JobState::Delegated {
            continue;
        }
        *pods.states.entry(state.oscar_status().into()).or_default() += count;
        pods.total += count;
    }
    Ok((pods.total, pods))
}

/// Buckets and objects (folder markers left out) in the platform's store.
async fn store_size(app: &App) -> AppResult<StoreStatus> {
    let buckets = crate::buckets::list(&app.s3.client).await?;
    let names: Vec<String> = buckets.iter().map(|b| b.name.clone()).collect();
    Ok(StoreStatus {
        buckets_count: buckets.len() as i64,
        total_objects: crate::buckets::total_usage(&app.s3.client, &names).await?.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::system::NodeResource;

    fn node(capacity: (i64, i64), usage: (i64, i64), requests: (i64, i64)) -> NodeStatus {
        NodeStatus {
            name: "n".into(),
            cpu: NodeResource {
                capacity_cores: capacity.0,
                usage_cores: usage.0,
                request_cores: requests.0,
                ..Default::default()
            },
            memory: NodeResource {
                capacity_bytes: capacity.1,
                usage_bytes: usage.1,
                request_bytes: requests.1,
                ..Default::default()
            },
            gpu: 1,
            is_interlink: false,
            status: "Ready".into(),
            conditions: Vec::new(),
        }
    }

    #[test]
    fn free_is_capacity_less_use_and_schedulable_capacity_less_requests() {
        let metrics = totals(&[
            node((4000, 8000), (1000, 2000), (3000, 1000)),
            node((2000, 4000), (500, 500), (0, 0)),
        ]);
        assert_eq!(
            metrics.cpu,
            CpuMetrics {
                total_free_cores: 4500,
                max_free_on_node_cores: 3000,
                total_schedulable_cores: 3000,
                total_schedulable_on_node_cores: 2000,
            }
        );
        assert_eq!(
            metrics.memory,
            MemoryMetrics {
                total_free_bytes: 9500,
                max_free_on_node_bytes: 6000,
                total_schedulable_bytes: 11000,
                max_schedulable_on_node_bytes: 7000,
            }
        );
        assert_eq!(metrics.gpu.total_gpu, 2);
    }
}
