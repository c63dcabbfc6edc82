//! Usage metrics (`/system/metrics…`): upstream's summary, breakdown and per-service shapes,
//! with what the platform adds from its own job records (runs that succeeded and failed,
//! CPU-seconds, memory GiB-seconds). Times are RFC 3339.

use serde::{Deserialize, Serialize};

/// `GET /system/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageSummary {
    pub start: String,
    pub end: String,
    pub totals: UsageTotals,
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageTotals {
    /// Services that exist now (of those the caller sees).
    pub services_count_active: i64,
    /// Services with a run in the window.
    pub services_count_total: i64,
    pub cpu_hours_total: f64,
    pub gpu_hours_total: f64,
    /// Jobs with a run that ended in the window: `/run` ones are sync, the others async.
    pub requests_count_total: i64,
    pub requests_count_sync: i64,
    pub requests_count_async: i64,
    pub requests_count_exposed: i64,
    pub countries_count: i64,
    pub countries: Vec<CountryCount>,
    pub users_count: i64,
    pub users: Vec<String>,
    #[serde(flatten)]
    pub runs: RunTotals,
}

/// What the platform's job records add to upstream's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunTotals {
    /// Runs (every attempt of a job) that ended in the window.
    pub executions_count: i64,
    pub executions_succeeded: i64,
    /// The script failed, or the platform could not carry the run out.
    pub executions_failed: i64,
    /// Cores asked for × seconds run.
    pub cpu_seconds: f64,
    /// GiB of memory asked for × seconds run.
    pub memory_gib_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountryCount {
    pub country: String,
    pub request_count: i64,
}

/// Where figures come from and whether it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Source {
    pub name: String,
    /// "ok" or "unavailable".
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

/// `GET /system/metrics/breakdown?group_by=service|user|country`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageBreakdown {
    pub start: String,
    pub end: String,
    pub group_by: String,
    pub items: Vec<BreakdownItem>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BreakdownItem {
    pub key: String,
    pub requests_count_total: i64,
    pub requests_count_sync: i64,
    pub requests_count_async: i64,
    pub requests_count_exposed: i64,
    pub unique_users_count: i64,
    /// With `include_users=true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    pub countries: Vec<CountryCount>,
    #[serde(flatten)]
    pub runs: RunTotals,
}

/// `GET /system/metrics/{service}`: every metric, or with `?metric=` one ([`MetricValue`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceUsage {
    pub service_name: String,
    pub start: String,
    pub end: String,
    pub metrics: Vec<ServiceMetric>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceMetric {
    pub metric: String,
    pub value: f64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricValue {
    pub service_id: String,
    pub metric: String,
    pub start: String,
    pub end: String,
    pub value: f64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    pub sources: Vec<Source>,
}

/// One UTC day's runs (the dashboard's activity chart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyUsage {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub runs: RunTotals,
}

/// A day of runs at a glance, of every service the caller sees or of one (the dashboard's
/// overview charts): runs per hour by outcome, how long they took, and the space buckets use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Glance {
    /// The runs that ended in each of the last 24 hours, oldest first.
    pub hours: Vec<HourRuns>,
    /// How many runs took at most each bound (a histogram, shortest first).
    pub durations: Vec<DurationBucket>,
    /// The buckets by the space they use, largest first.
    pub storage: Vec<BucketUse>,
}

/// The runs that ended in one hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourRuns {
    pub start: crate::Timestamp,
    pub succeeded: i64,
    pub failed: i64,
}

/// Runs that took more than the previous bound and at most `at_most_ms` (None: longer than
/// every bound).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DurationBucket {
    pub at_most_ms: Option<i64>,
    pub runs: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketUse {
    pub bucket: String,
    pub objects: i64,
    pub bytes: i64,
}

impl Glance {
    pub fn succeeded(&self) -> i64 {
        self.hours.iter().map(|h| h.succeeded).sum()
    }

    pub fn failed(&self) -> i64 {
        self.hours.iter().map(|h| h.failed).sum()
    }

    /// The bound of the histogram bucket that holds the `percent`th percentile run (None: no
    /// runs, or beyond the last bound), as Prometheus estimates quantiles from histograms.
    pub fn percentile(&self, percent: u8) -> Option<Option<i64>> {
        let total: i64 = self.durations.iter().map(|b| b.runs).sum();
        if total == 0 {
            return None;
        }
        // The rank of the run that is the percentile, counting from 1.
        let rank = ((total * i64::from(percent) + 99) / 100).max(1);
        let mut seen = 0;
        self.durations.iter().find_map(|bucket| {
            seen += bucket.runs;
            (seen >= rank).then_some(bucket.at_most_ms)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_the_bound_of_the_bucket_holding_the_rank() {
        let bucket = |at_most_ms, runs| DurationBucket { at_most_ms, runs };
        let mut glance = Glance {
            hours: Vec::new(),
            durations: vec![bucket(Some(100), 0), bucket(Some(1000), 0), bucket(None, 0)],
            storage: Vec::new(),
        };
        assert_eq!(glance.percentile(50), None);
        glance.durations = vec![
            bucket(Some(100), 50),
            bucket(Some(1000), 49),
            bucket(None, 1),
        ];
        assert_eq!(glance.percentile(50), Some(Some(100)));
        assert_eq!(glance.percentile(51), Some(Some(1000)));
        assert_eq!(glance.percentile(99), Some(Some(1000)));
        assert_eq!(glance.percentile(100), Some(None));
        glance.durations = vec![bucket(Some(100), 0), bucket(Some(1000), 1), bucket(None, 0)];
        assert_eq!(glance.percentile(1), Some(Some(1000)));
    }
}
