//! Facts about the deployment and the caller's keys to the object store.

use serde::{Deserialize, Serialize};

/// Facts about this deployment for the Info page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformInfo {
    pub version: String,
    pub git_commit: String,
    /// "embedded" (everything on this machine) or "external" (store and database configured).
    pub mode: String,
    /// "embedded S3 (s3s)" or "external S3".
    pub storage: String,
    pub storage_endpoint: String,
    /// "SQLite" or "PostgreSQL".
    pub database: String,
    /// Where jobs run, in words.
    pub executor: String,
    /// When this server started.
    pub started: crate::Timestamp,
}

/// Which keys [`StoreCredentials`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreKeyKind {
    /// The store's root keys (the admin).
    Root,
    /// The user's own key to the embedded store, limited to the buckets they may use.
    Personal,
    /// None: an external store manages its own users.
    NotIssued,
}

/// How the signed-in user reaches the object store with their own S3 clients.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCredentials {
    pub endpoint: String,
    pub region: String,
    pub kind: StoreKeyKind,
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for StoreCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCredentials")
            .field("endpoint", &self.endpoint)
            .field("kind", &self.kind)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// `GET /system/status`: upstream's `types.StatusInfo`, field for field (oscar-python's
/// `get_cluster_status`, peers choosing where to delegate). CPU figures are millicores (the
/// `_cores` names are upstream's), memory figures bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    pub cluster: ClusterStatus,
    pub oscar: OscarStatus,
    /// Zero unless the caller is the admin, as upstream.
    pub minio: StoreStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterStatus {
    pub nodes_count: i64,
    pub metrics: ClusterMetrics,
    pub nodes: Vec<NodeStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterMetrics {
    pub cpu: CpuMetrics,
    pub memory: MemoryMetrics,
    pub gpu: GpuMetrics,
}

/// Free = capacity less use; schedulable = capacity less what running work requested.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CpuMetrics {
    pub total_free_cores: i64,
    pub max_free_on_node_cores: i64,
    pub total_schedulable_cores: i64,
    pub total_schedulable_on_node_cores: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemoryMetrics {
    pub total_free_bytes: i64,
    pub max_free_on_node_bytes: i64,
    pub total_schedulable_bytes: i64,
    pub max_schedulable_on_node_bytes: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuMetrics {
    pub total_gpu: i64,
}

/// One machine jobs run on: the host in embedded mode, a cluster node in Kubernetes mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeStatus {
    pub name: String,
    pub cpu: NodeResource,
    pub memory: NodeResource,
    pub gpu: i64,
    pub is_interlink: bool,
    /// "Ready", "NotReady" or "Unknown".
    pub status: String,
    pub conditions: Vec<NodeCondition>,
}

/// Upstream fills the `_cores` fields for CPU and the `_bytes` ones for memory, and leaves
/// zeros out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeResource {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub capacity_cores: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage_cores: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub request_cores: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub capacity_bytes: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage_bytes: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub request_bytes: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeCondition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OscarStatus {
    pub deployment_name: String,
    pub ready: bool,
    pub deployment: OscarDeployment,
    /// Job records, every state (admin only).
    pub jobs_count: i64,
    /// Jobs by the pod phase they correspond to (admin only).
    pub pods: PodStates,
    pub oidc: OidcStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OscarDeployment {
    pub available_replicas: i32,
    pub ready_replicas: i32,
    pub replicas: i32,
    /// RFC 3339: when this server started.
    pub creation_timestamp: String,
    pub strategy: String,
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PodStates {
    pub total: i64,
    pub states: std::collections::BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OidcStatus {
    pub enabled: bool,
    pub issuers: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoreStatus {
    pub buckets_count: i64,
    pub total_objects: i64,
}
