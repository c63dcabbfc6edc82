//! The Kubernetes executor: each job is a `batch/v1` Job in the service's image, with the
//! supervisor copied in by an init container from the platform's own image. `objects` holds
//! the pure functions that build every object the platform creates.

pub mod cluster;
pub mod executor;
pub mod exposed;
mod mount;
pub mod nodes;
pub mod objects;
pub mod tracker;
pub mod workers;

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
    /// Routes straight to exposed services, when the operator gives them a host of their own;
    /// without, the platform's proxy serves them (see [`exposed`]).
    pub exposed_routes: Option<ExposedRoutes>,
    /// Whether exposed services may ask for a NodePort (a port on every node, taken from a
    /// range all users share, reaching the pods without the platform): off unless the
    /// operator allows it.
    pub allow_node_ports: bool,
    /// The StorageClass of managed volumes' claims (`OSCAR_KUBE_STORAGE_CLASS`; the cluster's
    /// default when None). It must offer ReadWriteMany: several pods mount a volume at once.
    pub storage_class: Option<String>,
    pub volume_limits: crate::volumes::Limits,
    /// The port warm workers listen on in their pods (`OSCAR_KUBE_WORKER_PORT`).
    pub worker_port: u16,
    /// rclone's image, when services may have a `mount` (`OSCAR_KUBE_RCLONE_IMAGE`): its
    /// sidecars are privileged, and so is the jobs' namespaces' Pod Security level.
    pub rclone_image: Option<String>,
}

/// How exposed services are routed to without the platform: on their own host (never the
/// dashboard's, whose session an app could otherwise use), by the Gateway API or an Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposedRoutes {
    pub host: String,
    pub via: RouteKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKind {
    /// HTTPRoutes attached to this Gateway.
    Gateway { namespace: String, name: String },
    /// Ingresses of this class (`nginx.ingress.kubernetes.io/rewrite-target` for
    /// `rewrite_target`).
    Ingress { class: String },
}

/// One namespace for every service, or one per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespacing {
    Shared,
    PerUser,
}

/// Where the platform's image keeps the static supervisor.
pub const SUPERVISOR_IN_IMAGE: &str = "/usr/local/bin/oscar-supervisor";
