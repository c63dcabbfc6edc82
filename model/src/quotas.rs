//! `/system/quotas…`: what a user may use at once and in total, and what they use, in
//! upstream's `QuotaResponse` shape. A `max` of -1 is unlimited.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The value of `max` that means no limit.
pub const UNLIMITED: i64 = -1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuotaReport {
    pub user_id: String,
    /// `jobs` (running at once), `cpu` (millicores of running jobs), `memory` (bytes of running
    /// jobs).
    pub resources: BTreeMap<String, QuotaValues>,
    pub minio: StoreQuota,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuotaValues {
    pub max: i64,
    pub used: i64,
}

impl QuotaValues {
    /// Used as a share of the limit (0 to 1); None when unlimited.
    pub fn share(self) -> Option<f64> {
        (self.max != UNLIMITED).then(|| {
            if self.max == 0 {
                1.0
            } else {
                (self.used as f64 / self.max as f64).clamp(0.0, 1.0)
            }
        })
    }
}

/// The store part: upstream's `buckets` and `storage_total.used` (a byte count as text), with
/// the total's limit as `storage_total.max` and both in numbers as `storage_total_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoreQuota {
    pub buckets: QuotaValues,
    pub storage_total: StorageTotal,
    pub storage_total_bytes: QuotaValues,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageTotal {
    pub used: String,
    /// Empty when unlimited.
    pub max: String,
}
