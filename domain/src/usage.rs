//! Usage metrics over a time window, from the platform's own record of every run
//! (`job_usage`, written when a run ends and kept when its job is deleted): upstream's
//! `/system/metrics` summary, breakdown and per-service figures. CPU and memory are what the
//! service asked for times how long the run took, as schedulers account them. Callers see
//! the runs of the services they manage and their own runs of services shared with them; the
//! admin sees every run, of deleted services too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use model::jobs::Trigger;
use model::usage::{
    BreakdownItem, DailyUsage, DurationBucket, Glance, HourRuns, MetricValue, RunTotals,
    ServiceMetric, ServiceUsage, Source, UsageBreakdown, UsageSummary, UsageTotals,
};
use model::{AppError, AppResult, Timestamp};

use crate::access::Caller;
use crate::db::Database;
use crate::services::{self, Catalog};

/// Runs are kept this long for usage reports (a year and a month: yearly reports work).
pub const KEPT: Duration = Duration::from_secs(400 * 24 * 3600);

/// Without `start`, a window reaches this far back from its end (upstream's default).
const DEFAULT_SPAN: Duration = Duration::from_secs(24 * 3600);

/// The metric keys `/system/metrics/{service}?metric=` accepts (upstream's), in the order the
/// whole list shows them.
pub const SERVICE_METRICS: [&str; 6] = [
    "cpu-hours",
    "gpu-hours",
    "requests-sync-per-service",
    "requests-async-per-service",
    "requests-exposed-per-service",
    "users-per-service",
];

/// Runs that ended in `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    /// From the query's RFC 3339 `start` and `end` (default: the 24 hours before now).
    pub fn parse(start: Option<&str>, end: Option<&str>, now: Timestamp) -> AppResult<Self> {
        let read = |field: &str, text: Option<&str>| {
            text.filter(|t| !t.trim().is_empty())
                .map(|t| {
                    Timestamp::parse_rfc3339(t.trim()).ok_or_else(|| {
                        AppError::bad_request(
                            field,
                            format!("{t:?} is not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z)"),
                        )
                    })
                })
                .transpose()
        };
        let end = read("end", end)?.unwrap_or(now);
        let start = read("start", start)?.unwrap_or(end - DEFAULT_SPAN);
        if end < start {
            return Err(AppError::bad_request("end", "must not be before start"));
        }
        Ok(Self { start, end })
    }
}

/// How a breakdown groups runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Service,
    User,
    /// The platform does not locate its users: no items.
    Country,
}

impl GroupBy {
    pub fn parse(text: &str) -> AppResult<Self> {
        match text.trim() {
            "service" => Ok(Self::Service),
            "user" => Ok(Self::User),
            "country" => Ok(Self::Country),
            "" => Err(AppError::bad_request(
                "group_by",
                "is required (service, user or country)",
            )),
            other => Err(AppError::bad_request(
                "group_by",
                format!("{other:?} is not one of service, user, country"),
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::User => "user",
            Self::Country => "country",
        }
    }
}

/// The runs of one service by one user through one trigger that ended on one UTC day, added
/// up.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Group {
    service: String,
    owner: String,
    trigger: Trigger,
    /// Days since the epoch.
    day: i64,
    runs: i64,
    jobs: i64,
    succeeded: i64,
    cpu_seconds: f64,
    memory_gib_seconds: f64,
    gpu_seconds: f64,
}

/// Figures of a set of groups.
#[derive(Debug, Default)]
struct Tally {
    runs: RunTotals,
    sync: i64,
    asynchronous: i64,
    gpu_seconds: f64,
    users: BTreeSet<String>,
}

impl Tally {
    fn add(&mut self, group: &Group) {
        self.runs.executions_count += group.runs;
        self.runs.executions_succeeded += group.succeeded;
        self.runs.executions_failed += group.runs - group.succeeded;
        self.runs.cpu_seconds += group.cpu_seconds;
        self.runs.memory_gib_seconds += group.memory_gib_seconds;
        self.gpu_seconds += group.gpu_seconds;
        if group.trigger == Trigger::Sync {
            self.sync += group.jobs;
        } else {
            self.asynchronous += group.jobs;
        }
        self.users.insert(group.owner.clone());
    }

    fn of<'g>(groups: impl IntoIterator<Item = &'g Group>) -> Self {
        let mut tally = Self::default();
        for group in groups {
            tally.add(group);
        }
        tally
    }
}

/// The run groups in the window the caller may count.
async fn groups(
    db: &Database,
    catalog: &Catalog,
    caller: &Caller,
    window: Window,
    service: Option<&str>,
) -> AppResult<Vec<Group>> {
    let all: Vec<Group> = sqlx::query_as(
        "SELECT service, owner, trigger, CAST(finished_at / 86400000 AS BIGINT) AS day,
                COUNT(*) AS runs, COUNT(DISTINCT job) AS jobs,
                CAST(SUM(CASE WHEN outcome = 'succeeded' THEN 1 ELSE 0 END) AS BIGINT) AS succeeded,
                SUM(CAST(finished_at - started_at AS DOUBLE PRECISION) * cpu_millis) / 1000000.0
                    AS cpu_seconds,
                SUM(CAST(finished_at - started_at AS DOUBLE PRECISION) * memory_bytes)
                    / 1073741824000.0 AS memory_gib_seconds,
                SUM(CAST(finished_at - started_at AS DOUBLE PRECISION) * gpus) / 1000.0
                    AS gpu_seconds
         FROM job_usage
         WHERE finished_at >= $1 AND finished_at < $2 AND ($3 IS NULL OR service = $3)
         GROUP BY service, owner, trigger, day
         ORDER BY service, owner, trigger, day",
    )
    .bind(window.start)
    .bind(window.end)
    .bind(service)
    .fetch_all(db.pool())
    .await?;
    let counted = Counted::by(db, catalog, caller).await?;
    Ok(all
        .into_iter()
        .filter(|g| counted.run(&g.service, &g.owner))
        .collect())
}

/// Whose runs a caller counts: every run for the admin; else every run of the services they
/// manage and their own runs of services shared with them.
struct Counted<'c> {
    caller: &'c Caller,
    /// Visible service → its owner; None for the admin.
    visible: Option<HashMap<String, String>>,
}

impl<'c> Counted<'c> {
    async fn by(db: &Database, catalog: &Catalog, caller: &'c Caller) -> AppResult<Self> {
        let visible = match caller.admin {
            true => None,
            false => Some(
                services::list_visible(db, catalog, caller)
                    .await?
                    .into_iter()
                    .map(|s| (s.name, s.owner))
                    .collect(),
            ),
        };
        Ok(Self { caller, visible })
    }

    fn run(&self, service: &str, owner: &str) -> bool {
        self.visible.as_ref().is_none_or(|visible| {
            visible
                .get(service)
                .is_some_and(|manager| self.caller.manages(manager) || owner == self.caller.id)
        })
    }
}

/// The bounds of the run-duration histogram, in milliseconds; longer runs fall past the last.
pub const DURATION_BOUNDS_MS: [i64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000,
];

/// Runs of one service by one user that ended in one hour and took as long as one histogram
/// bucket, counted.
#[derive(Debug, sqlx::FromRow)]
struct HourGroup {
    service: String,
    owner: String,
    /// Hours since the epoch.
    hour: i64,
    /// Index in [`DURATION_BOUNDS_MS`], or its length for longer runs.
    bucket: i64,
    runs: i64,
    succeeded: i64,
}

/// The runs of the 24 hours up to `now` the caller counts (of `service` only, when given):
/// per hour by outcome and as a duration histogram. `storage` is left for the caller to fill.
pub async fn glance(
    db: &Database,
    catalog: &Catalog,
    caller: &Caller,
    service: Option<&str>,
    now: Timestamp,
) -> AppResult<Glance> {
    const HOUR: i64 = 3_600_000;
    let first = now.millis() / HOUR - 23;
    let bucket = DURATION_BOUNDS_MS
        .iter()
        .enumerate()
        .map(|(i, bound)| format!("WHEN finished_at - started_at <= {bound} THEN {i} "))
        .collect::<String>();
    let groups: Vec<HourGroup> = sqlx::query_as(&format!(
        "SELECT service, owner, CAST(finished_at / {HOUR} AS BIGINT) AS hour,
                CAST(CASE {bucket}ELSE {} END AS BIGINT) AS bucket,
                COUNT(*) AS runs,
                CAST(SUM(CASE WHEN outcome = 'succeeded' THEN 1 ELSE 0 END) AS BIGINT) AS succeeded
         FROM job_usage
         WHERE finished_at >= $1 AND finished_at < $2 AND ($3 IS NULL OR service = $3)
         GROUP BY service, owner, hour, bucket",
        DURATION_BOUNDS_MS.len()
    ))
    .bind(Timestamp::from_millis(first * HOUR))
    .bind(now)
    .bind(service)
    .fetch_all(db.pool())
    .await?;
    let counted = Counted::by(db, catalog, caller).await?;
    let mut hours: Vec<HourRuns> = (first..first + 24)
        .map(|hour| HourRuns {
            start: Timestamp::from_millis(hour * HOUR),
            succeeded: 0,
            failed: 0,
        })
        .collect();
    let mut durations: Vec<DurationBucket> = DURATION_BOUNDS_MS
        .iter()
        .map(|bound| Some(*bound))
        .chain([None])
        .map(|at_most_ms| DurationBucket {
            at_most_ms,
            runs: 0,
        })
        .collect();
    for group in groups.iter().filter(|g| counted.run(&g.service, &g.owner)) {
        if let Some(hour) = hours.get_mut((group.hour - first) as usize) {
            hour.succeeded += group.succeeded;
            hour.failed += group.runs - group.succeeded;
        }
        if let Some(bucket) = durations.get_mut(group.bucket as usize) {
            bucket.runs += group.runs;
        }
    }
    Ok(Glance {
        hours,
        durations,
        storage: Vec::new(),
    })
}

/// The figures come from the job records; locations are not recorded.
fn sources(now: Timestamp) -> Vec<Source> {
    vec![
        Source {
            name: "job-records".into(),
            status: "ok".into(),
            last_updated: Some(now.rfc3339()),
            notes: String::new(),
        },
        Source {
            name: "countries".into(),
            status: "unavailable".into(),
            last_updated: None,
            notes: "the platform does not locate its users".into(),
        },
    ]
}

pub async fn summary(
    db: &Database,
    catalog: &Catalog,
    caller: &Caller,
    window: Window,
) -> AppResult<UsageSummary> {
    let groups = groups(db, catalog, caller, window, None).await?;
    let tally = Tally::of(&groups);
    let services_with_runs: BTreeSet<&str> = groups.iter().map(|g| g.service.as_str()).collect();
    Ok(UsageSummary {
        start: window.start.rfc3339(),
        end: window.end.rfc3339(),
        totals: UsageTotals {
            services_count_active: services::list_visible(db, catalog, caller).await?.len() as i64,
            services_count_total: services_with_runs.len() as i64,
            cpu_hours_total: tally.runs.cpu_seconds / 3600.0,
            gpu_hours_total: tally.gpu_seconds / 3600.0,
            requests_count_total: tally.sync + tally.asynchronous,
            requests_count_sync: tally.sync,
            requests_count_async: tally.asynchronous,
            requests_count_exposed: 0,
            countries_count: 0,
            countries: Vec::new(),
            users_count: tally.users.len() as i64,
            users: tally.users.into_iter().collect(),
            runs: tally.runs,
        },
        sources: sources(Timestamp::now()),
    })
}

pub async fn breakdown(
    db: &Database,
    catalog: &Catalog,
    caller: &Caller,
    window: Window,
    group_by: GroupBy,
    include_users: bool,
) -> AppResult<UsageBreakdown> {
    let groups = groups(db, catalog, caller, window, None).await?;
    let mut by_key: BTreeMap<&str, Vec<&Group>> = BTreeMap::new();
    for group in &groups {
        let key = match group_by {
            GroupBy::Service => group.service.as_str(),
            GroupBy::User => group.owner.as_str(),
            GroupBy::Country => continue,
        };
        by_key.entry(key).or_default().push(group);
    }
    let items = by_key
        .into_iter()
        .map(|(key, groups)| {
            let tally = Tally::of(groups);
            BreakdownItem {
                key: key.to_string(),
                requests_count_total: tally.sync + tally.asynchronous,
                requests_count_sync: tally.sync,
                requests_count_async: tally.asynchronous,
                requests_count_exposed: 0,
                unique_users_count: tally.users.len() as i64,
                users: if include_users {
                    tally.users.into_iter().collect()
                } else {
                    Vec::new()
                },
                countries: Vec::new(),
                runs: tally.runs,
            }
        })
        .collect();
    Ok(UsageBreakdown {
        start: window.start.rfc3339(),
        end: window.end.rfc3339(),
        group_by: group_by.as_str().into(),
        items,
    })
}

/// Runs per UTC day of the window, every day listed (oldest first), for the activity chart.
pub async fn daily(
    db: &Database,
    catalog: &Catalog,
    caller: &Caller,
    window: Window,
) -> AppResult<Vec<DailyUsage>> {
    const DAY: i64 = 86_400_000;
    let groups = groups(db, catalog, caller, window, None).await?;
    let (first, last) = (
        window.start.millis() / DAY,
        (window.end.millis() - 1).max(0) / DAY,
    );
    Ok((first..=last)
        .map(|day| {
            let c = Timestamp::from_millis(day * DAY).civil();
            DailyUsage {
                day: format!("{:04}-{:02}-{:02}", c.year, c.month, c.day),
                runs: Tally::of(groups.iter().filter(|g| g.day == day)).runs,
            }
        })
        .collect())
}

/// A breakdown as CSV, one row per item (upstream's columns, then the run figures).
pub fn breakdown_csv(breakdown: &UsageBreakdown) -> String {
    let mut csv = String::from(
        "key,requests_count_total,requests_count_sync,requests_count_async,\
         requests_count_exposed,unique_users_count,executions_count,executions_succeeded,\
         executions_failed,cpu_seconds,memory_gib_seconds\n",
    );
    for item in &breakdown.items {
        // Keys are service names and user ids; quote any that would break the row.
        let key = if item.key.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", item.key.replace('"', "\"\""))
        } else {
            item.key.clone()
        };
        let r = &item.runs;
        csv.push_str(&format!(
            "{key},{},{},{},{},{},{},{},{},{:.3},{:.3}\n",
            item.requests_count_total,
            item.requests_count_sync,
            item.requests_count_async,
            item.requests_count_exposed,
            item.unique_users_count,
            r.executions_count,
            r.executions_succeeded,
            r.executions_failed,
            r.cpu_seconds,
            r.memory_gib_seconds,
        ));
    }
    csv
}

/// One service's metrics: every one, or the one named by `metric` (a 400 names the keys).
pub async fn service(
    db: &Database,
    catalog: &Catalog,
    caller: &Caller,
    name: &str,
    window: Window,
) -> AppResult<ServiceUsage> {
    // Deleted services stay reportable to the admin; others must see the service.
    if !caller.admin {
        services::require_visible(db, caller, name).await?;
    }
    let tally = Tally::of(&groups(db, catalog, caller, window, Some(name)).await?);
    let sources = sources(Timestamp::now());
    let value = |metric: &str| match metric {
        "cpu-hours" => (tally.runs.cpu_seconds / 3600.0, "hours"),
        "gpu-hours" => (tally.gpu_seconds / 3600.0, "hours"),
        "requests-sync-per-service" => (tally.sync as f64, ""),
        "requests-async-per-service" => (tally.asynchronous as f64, ""),
        "requests-exposed-per-service" => (0.0, ""),
        _ => (tally.users.len() as f64, ""),
    };
    Ok(ServiceUsage {
        service_name: name.to_string(),
        start: window.start.rfc3339(),
        end: window.end.rfc3339(),
        metrics: SERVICE_METRICS
            .iter()
            .map(|metric| {
                let (value, unit) = value(metric);
                ServiceMetric {
                    metric: metric.to_string(),
                    value,
                    unit: unit.into(),
                    sources: sources.clone(),
                }
            })
            .collect(),
    })
}

/// `?metric=`: the one metric of a service's figures.
pub fn one_metric(usage: ServiceUsage, metric: &str) -> AppResult<MetricValue> {
    let found = usage
        .metrics
        .into_iter()
        .find(|m| m.metric == metric)
        .ok_or_else(|| {
            AppError::bad_request(
                "metric",
                format!("{metric:?} is not one of {}", SERVICE_METRICS.join(", ")),
            )
        })?;
    Ok(MetricValue {
        service_id: usage.service_name,
        metric: found.metric,
        start: usage.start,
        end: usage.end,
        value: found.value,
        unit: found.unit,
        sources: found.sources,
    })
}

/// Forgets runs older than [`KEPT`].
pub async fn prune(db: &Database, now: Timestamp) -> AppResult<u64> {
    Ok(sqlx::query("DELETE FROM job_usage WHERE finished_at < $1")
        .bind(now - KEPT)
        .execute(db.pool())
        .await?
        .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_default_to_the_last_day_and_name_the_bad_field() {
        let now = Timestamp::from_millis(1_767_261_600_000);
        let day = Window::parse(None, None, now).unwrap();
        assert_eq!(day.end, now);
        assert_eq!(day.end.since(day.start), DEFAULT_SPAN);
        let given = Window::parse(Some("2026-01-01T00:00:00Z"), Some(""), now).unwrap();
        assert_eq!(given.start.rfc3339(), "2026-01-01T00:00:00Z");
        let err = Window::parse(Some("yesterday"), None, now).unwrap_err();
        assert!(err.to_string().contains("start"), "{err}");
        let err = Window::parse(
            Some("2026-02-01T00:00:00Z"),
            Some("2026-01-01T00:00:00Z"),
            now,
        )
        .unwrap_err();
        assert!(err.to_string().contains("end"), "{err}");
    }

    #[test]
    fn csv_rows_quote_what_would_break_them() {
        let breakdown = UsageBreakdown {
            start: String::new(),
            end: String::new(),
            group_by: "user".into(),
            items: vec![BreakdownItem {
                key: "a,\"b\"".into(),
                requests_count_total: 2,
                runs: RunTotals {
                    executions_count: 3,
                    cpu_seconds: 1.5,
                    ..Default::default()
                },
                ..Default::default()
            }],
        };
        let csv = breakdown_csv(&breakdown);
        let row = csv.lines().nth(1).unwrap();
        assert_eq!(row, "\"a,\"\"b\"\"\",2,0,0,0,0,3,0,0,1.500,0.000");
    }
}
