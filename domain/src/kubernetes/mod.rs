//! The Kubernetes executor: each job is a `batch/v1` Job in the service's image, with the
//! supervisor copied in by an init container from the platform's own image. `objects` holds
//! the pure functions that build every object the platform creates.

pub mod cluster;
pub mod executor;
pub mod nodes;
pub mod objects;
pub mod tracker;

use std::time::Duration;

/// Where and how jobs run on the cluster (from `OSCAR_KUBE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// Where services of the admin (and of everybody, with [`Namespacing::Shared`]) run.
    pub namespace: String,
    pub namespacing: Namespacing,
    /// The platform's image: holds the static supervisor at [`SUPERVISOR_IN_IMAGE`].
    pub platform_image: String,
    /// How long finished Jobs stay on the cluster (their logs are kept by the platform).
    pub job_ttl: Duration,
    /// How long a job may wait for its pod to start (image pulls, scheduling, quota) before
    /// it fails with the cluster's reason.
    pub pending_timeout: Duration,
}

/// One namespace for every service, or one per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespacing {
    Shared,
    PerUser,
}

/// Where the platform's image keeps the static supervisor.
pub const SUPERVISOR_IN_IMAGE: &str = "/usr/local/bin/oscar-supervisor";
