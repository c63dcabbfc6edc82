//! Managed volumes (`/system/volumes`, a service's `volume`): a directory of the platform
//! that outlives the jobs writing it, attached to services at a mount path. Upstream's
//! `ManagedVolume` shapes.

use serde::{Deserialize, Serialize};

use crate::service::Service;

/// `creation_mode` of a volume made through `/system/volumes`.
pub const MADE_BY_API: &str = "api";
/// `creation_mode` of a volume a service's `volume.size` made.
pub const MADE_BY_SERVICE: &str = "service";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Volume {
    pub name: String,
    /// Where it lives: the owner's namespace on Kubernetes, `embedded` on one machine.
    pub namespace: String,
    /// The PersistentVolumeClaim on Kubernetes (the volume's name), empty in embedded mode.
    pub pvc_name: String,
    /// A Kubernetes quantity, e.g. `1Gi`.
    pub size: String,
    pub owner_user: String,
    /// The service whose `volume.size` made it, empty for `api`.
    pub created_by_service: String,
    /// `api` or `service`.
    pub creation_mode: String,
    /// `delete`: removed with the service that made it; `retain`: kept.
    pub lifecycle_policy: String,
    pub attachments: Vec<Attachment>,
    pub status: VolumeStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    pub service_name: String,
    pub mount_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumeStatus {
    /// `Bound` when usable.
    pub phase: String,
    pub message: String,
    pub attachment_count: usize,
}

/// `POST /system/volumes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewVolume {
    pub name: String,
    /// A Kubernetes quantity, e.g. `1Gi`.
    pub size: String,
}

/// A service's `volume`: `size` makes a volume (named `name`, else after the service),
/// `name` alone attaches an existing one of the owner's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceVolume {
    pub name: String,
    pub size: String,
    pub mount_path: String,
    pub lifecycle_policy: String,
}

impl ServiceVolume {
    /// The service's volume, when it declares one (`validate` has checked its shape).
    pub fn of(service: &Service) -> Option<Self> {
        let value = service.inactive.get("volume")?;
        if value.is_null() {
            return None;
        }
        serde_json::from_value(value.clone()).ok()
    }

    /// The volume's name: its own, else the service's.
    pub fn volume_name(&self, service: &str) -> String {
        if self.name.is_empty() {
            service.to_string()
        } else {
            self.name.clone()
        }
    }

    /// `delete` unless `retain` was asked for (upstream's default).
    pub fn lifecycle(&self) -> &str {
        if self.lifecycle_policy == "retain" {
            "retain"
        } else {
            "delete"
        }
    }
}
