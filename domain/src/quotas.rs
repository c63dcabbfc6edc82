//! Per-user quotas enforced by the platform itself, the same in every mode (no Kueue): jobs
//! running at once, and the CPU and memory those jobs asked for, are checked when the
//! dispatcher claims a job (one over quota waits); buckets owned and bytes stored in them are
//! checked when a bucket is made or an upload comes through the platform. Limits are the
//! admin's: a default for everyone (`platform_settings` 'quota_defaults') and per-user values
//! (`user_quotas`). The admin account has none.

use std::collections::BTreeMap;

use model::quotas::{QuotaReport, QuotaValues, StorageTotal, StoreQuota, UNLIMITED};
use model::service::quantity;
use model::{AppError, AppResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::Caller;
use crate::db::Database;
use crate::jobs::executor::Requested;

const DEFAULTS: &str = "quota_defaults";

/// One limit as stored: None follows the default (per user) or is unlimited (the default).
pub type Limit = Option<i64>;

/// A user's limits, or the defaults: `null` follows the default (a user's) or is unlimited
/// (a default).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    sqlx::FromRow,
    utoipa::ToSchema,
)]
pub struct Limits {
    #[schema(value_type = Option<i64>)]
    pub jobs: Limit,
    #[schema(value_type = Option<i64>)]
    pub cpu_millis: Limit,
    #[schema(value_type = Option<i64>)]
    pub memory_bytes: Limit,
    #[schema(value_type = Option<i64>)]
    pub buckets: Limit,
    #[schema(value_type = Option<i64>)]
    pub storage_bytes: Limit,
}

impl Limits {
    /// No limit at all.
    pub const NONE: Limits = Limits {
        jobs: None,
        cpu_millis: None,
        memory_bytes: None,
        buckets: None,
        storage_bytes: None,
    };

    /// Whether any limit applies to running jobs (jobs, CPU, memory).
    pub fn holds_jobs(&self) -> bool {
        self.jobs.is_some() || self.cpu_millis.is_some() || self.memory_bytes.is_some()
    }

    /// These per-user values over `defaults`; -1 (unlimited) becomes None.
    fn over(self, defaults: Limits) -> Limits {
        let pick = |own: Limit, default: Limit| match own.or(default) {
            Some(UNLIMITED) | None => None,
            some => some,
        };
        Limits {
            jobs: pick(self.jobs, defaults.jobs),
            cpu_millis: pick(self.cpu_millis, defaults.cpu_millis),
            memory_bytes: pick(self.memory_bytes, defaults.memory_bytes),
            buckets: pick(self.buckets, defaults.buckets),
            storage_bytes: pick(self.storage_bytes, defaults.storage_bytes),
        }
    }
}

/// What a user's running jobs hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Running {
    pub jobs: i64,
    pub cpu_millis: i64,
    pub memory_bytes: i64,
}

/// Whether one more job fits a user's quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    Yes,
    /// Not now: it waits for running jobs to end (the reason names the quota).
    Wait(String),
    /// Never: the job alone asks for more than the quota.
    Never(String),
}

/// Whether a job asking for `asked` fits next to `running` under `limits`.
pub fn fits(limits: &Limits, running: Running, asked: Requested) -> Fit {
    let checks = [
        ("jobs", limits.jobs, running.jobs, 1, "concurrent jobs"),
        (
            "cpu",
            limits.cpu_millis,
            running.cpu_millis,
            asked.cpu_millis,
            "millicores of CPU",
        ),
        (
            "memory",
            limits.memory_bytes,
            running.memory_bytes,
            asked.memory_bytes,
            "bytes of memory",
        ),
    ];
    for (quota, max, used, asked, unit) in checks {
        let Some(max) = max else { continue };
        if asked > max {
            return Fit::Never(format!(
                "the job asks for {asked} {unit}, more than the owner's {quota} quota of {max}"
            ));
        }
        if used + asked > max {
            return Fit::Wait(format!(
                "waiting for the owner's {quota} quota: {used} of {max} {unit} in use"
            ));
        }
    }
    Fit::Yes
}

/// The defaults every user without their own values gets.
pub async fn defaults(db: &Database) -> AppResult<Limits> {
    crate::settings::read(db, DEFAULTS).await
}

/// A user's own values (all following the default when they have none).
async fn own(db: &Database, user: &str) -> AppResult<Limits> {
    let own: Option<Limits> = sqlx::query_as(
        "SELECT jobs, cpu_millis, memory_bytes, buckets, storage_bytes
         FROM user_quotas WHERE user_id = $1",
    )
    .bind(user)
    .fetch_optional(db.pool())
    .await?;
    Ok(own.unwrap_or_default())
}

/// The limits that apply to `user` (none for the admin account).
pub async fn limits_of(db: &Database, user: &str) -> AppResult<Limits> {
    if user == model::auth::ADMIN_OWNER {
        return Ok(Limits::NONE);
    }
    Ok(own(db, user).await?.over(defaults(db).await?))
}

/// What the running jobs of `owner` (of everyone with None) asked for, as recorded when
/// each was claimed.
pub async fn running_of(db: &Database, owner: Option<&str>) -> AppResult<Running> {
    Ok(sqlx::query_as(
        "SELECT COUNT(*) AS jobs, CAST(COALESCE(SUM(cpu_millis), 0) AS BIGINT) AS cpu_millis,
                CAST(COALESCE(SUM(memory_bytes), 0) AS BIGINT) AS memory_bytes
         FROM jobs WHERE ($1 IS NULL OR owner = $1) AND state = 'running'",
    )
    .bind(owner)
    .fetch_one(db.pool())
    .await?)
}

/// Whether a job of `owner` asking for `asked` may start now.
pub async fn job_fits(db: &Database, owner: &str, asked: Requested) -> AppResult<Fit> {
    let limits = limits_of(db, owner).await?;
    if !limits.holds_jobs() {
        return Ok(Fit::Yes);
    }
    Ok(fits(&limits, running_of(db, Some(owner)).await?, asked))
}

async fn buckets_owned(db: &Database, user: &str) -> AppResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM buckets WHERE owner = $1")
            .bind(user)
            .fetch_one(db.pool())
            .await?,
    )
}

/// Refuses (403, naming the quota) `more` new buckets beyond what `owner` may have.
pub async fn check_new_buckets(db: &Database, owner: &str, more: i64) -> AppResult<()> {
    if more == 0 {
        return Ok(());
    }
    let Some(max) = limits_of(db, owner).await?.buckets else {
        return Ok(());
    };
    let owned = buckets_owned(db, owner).await?;
    if owned + more > max {
        return Err(AppError::Forbidden(format!(
            "quota: buckets: {owner} owns {owned} of {max}; delete one or ask the admin for more"
        )));
    }
    Ok(())
}

/// Bytes stored in the buckets `owner` owns.
pub async fn stored_bytes(db: &Database, s3: &aws_sdk_s3::Client, owner: &str) -> AppResult<i64> {
    let buckets: Vec<String> = sqlx::query_scalar("SELECT name FROM buckets WHERE owner = $1")
        .bind(owner)
        .fetch_all(db.pool())
        .await?;
    let (_, bytes) = crate::buckets::total_usage(s3, &buckets).await?;
    Ok(bytes)
}

/// How many more bytes may be stored in a bucket of `owner`; None: no limit.
pub async fn storage_room(
    db: &Database,
    s3: &aws_sdk_s3::Client,
    owner: &str,
) -> AppResult<Option<u64>> {
    let Some(max) = limits_of(db, owner).await?.storage_bytes else {
        return Ok(None);
    };
    let used = stored_bytes(db, s3, owner).await?;
    Ok(Some(max.saturating_sub(used).max(0) as u64))
}

/// The refusal of an upload that would take `owner` over their storage quota.
pub fn over_storage(owner: &str, room: u64) -> AppError {
    AppError::Forbidden(format!(
        "quota: storage_total: the buckets of {owner} have room for {room} more bytes"
    ))
}

/// A user's quota and use (`GET /system/quotas/user[/{id}]`): one's own, any for the admin.
pub async fn report(
    db: &Database,
    s3: &aws_sdk_s3::Client,
    caller: &Caller,
    user: &str,
) -> AppResult<QuotaReport> {
    if !caller.admin && caller.id != user {
        return Err(AppError::Forbidden(
            "only the admin may read other users' quotas".into(),
        ));
    }
    let limits = limits_of(db, user).await?;
    let running = running_of(db, Some(user)).await?;
    let max = |limit: Limit| limit.unwrap_or(UNLIMITED);
    let stored = stored_bytes(db, s3, user).await?;
    Ok(QuotaReport {
        user_id: user.to_string(),
        resources: BTreeMap::from([
            (
                "jobs".to_string(),
                QuotaValues {
                    max: max(limits.jobs),
                    used: running.jobs,
                },
            ),
            (
                "cpu".to_string(),
                QuotaValues {
                    max: max(limits.cpu_millis),
                    used: running.cpu_millis,
                },
            ),
            (
                "memory".to_string(),
                QuotaValues {
                    max: max(limits.memory_bytes),
                    used: running.memory_bytes,
                },
            ),
        ]),
        minio: StoreQuota {
            buckets: QuotaValues {
                max: max(limits.buckets),
                used: buckets_owned(db, user).await?,
            },
            storage_total: StorageTotal {
                used: stored.to_string(),
                max: limits
                    .storage_bytes
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            },
            storage_total_bytes: QuotaValues {
                max: max(limits.storage_bytes),
                used: stored,
            },
        },
    })
}

/// Which limits a `PUT` changes and to what (`None`: unchanged; `Some(None)`: back to the
/// default; `Some(Some(-1))`: unlimited).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub jobs: Option<Limit>,
    pub cpu_millis: Option<Limit>,
    pub memory_bytes: Option<Limit>,
    pub buckets: Option<Limit>,
    pub storage_bytes: Option<Limit>,
}

impl Update {
    /// Upstream's `QuotaUpdateRequest` (`cpu`, `memory`, `minio.buckets`) plus `jobs` and
    /// `minio.storage_total`; strings or numbers, `""` or absent for unchanged, `default`,
    /// `unlimited` (or -1). Fields the platform has no quota for are a 400 when set.
    pub fn parse(body: &Value) -> AppResult<Self> {
        let Some(object) = body.as_object() else {
            return Err(AppError::bad_request("body", "must be a JSON object"));
        };
        for unsupported in ["ephemeral_storage", "gpu", "volumes"] {
            if object.get(unsupported).is_some_and(|v| !blank(v)) {
                return Err(AppError::bad_request(
                    unsupported,
                    "the platform keeps no quota of it",
                ));
            }
        }
        let minio = object.get("minio").unwrap_or(&Value::Null);
        if minio.get("storage_per_bucket").is_some_and(|v| !blank(v)) {
            return Err(AppError::bad_request(
                "minio.storage_per_bucket",
                "the platform limits the total stored (minio.storage_total), not each bucket",
            ));
        }
        let update = Self {
            jobs: setting("jobs", object.get("jobs"), Unit::Count)?,
            cpu_millis: setting("cpu", object.get("cpu"), Unit::Cpu)?,
            memory_bytes: setting("memory", object.get("memory"), Unit::Bytes)?,
            buckets: setting("minio.buckets", minio.get("buckets"), Unit::Count)?,
            storage_bytes: setting(
                "minio.storage_total",
                minio.get("storage_total"),
                Unit::Bytes,
            )?,
        };
        if update == Self::default() {
            return Err(AppError::bad_request(
                "body",
                "set at least one of jobs, cpu, memory, minio.buckets, minio.storage_total",
            ));
        }
        Ok(update)
    }

    fn apply(&self, limits: &mut Limits) {
        for (field, change) in [
            (&mut limits.jobs, self.jobs),
            (&mut limits.cpu_millis, self.cpu_millis),
            (&mut limits.memory_bytes, self.memory_bytes),
            (&mut limits.buckets, self.buckets),
            (&mut limits.storage_bytes, self.storage_bytes),
        ] {
            if let Some(change) = change {
                *field = change;
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Count,
    Cpu,
    Bytes,
}

fn blank(value: &Value) -> bool {
    value.is_null() || value.as_str().is_some_and(|s| s.trim().is_empty())
}

fn setting(field: &str, value: Option<&Value>, unit: Unit) -> AppResult<Option<Limit>> {
    let Some(value) = value.filter(|v| !blank(v)) else {
        return Ok(None);
    };
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return Err(AppError::bad_request(field, "must be a string or a number")),
    };
    match text.as_str() {
        "default" => return Ok(Some(None)),
        "unlimited" | "-1" => return Ok(Some(Some(UNLIMITED))),
        _ => {}
    }
    let amount = match unit {
        Unit::Count => text.parse::<i64>().ok().filter(|n| *n >= 0),
        Unit::Cpu => quantity::parse(&text)
            .ok()
            .map(|cores| (cores * 1000.0).round() as i64),
        Unit::Bytes => quantity::parse(&text)
            .ok()
            .map(|bytes| bytes.round() as i64),
    };
    amount.map(|n| Some(Some(n))).ok_or_else(|| {
        AppError::bad_request(
            field,
            format!(
                "{text:?} is not {}, \"unlimited\" or \"default\"",
                match unit {
                    Unit::Count => "a whole number",
                    Unit::Cpu => "a CPU amount such as 2 or 500m",
                    Unit::Bytes => "an amount such as 512Mi or 10Gi",
                }
            ),
        )
    })
}

fn require_admin(caller: &Caller) -> AppResult<()> {
    if caller.admin {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only the admin may change quotas".into(),
        ))
    }
}

/// Changes a user's own limits (the admin only).
pub async fn update_user(
    db: &Database,
    caller: &Caller,
    user: &str,
    update: &Update,
) -> AppResult<()> {
    require_admin(caller)?;
    let user = user.trim();
    if user.is_empty() || user.len() > 255 {
        return Err(AppError::bad_request("user", "must be 1 to 255 characters"));
    }
    let mut limits = own(db, user).await?;
    update.apply(&mut limits);
    sqlx::query(
        "INSERT INTO user_quotas (user_id, jobs, cpu_millis, memory_bytes, buckets, storage_bytes)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id) DO UPDATE SET jobs = excluded.jobs,
             cpu_millis = excluded.cpu_millis, memory_bytes = excluded.memory_bytes,
             buckets = excluded.buckets, storage_bytes = excluded.storage_bytes",
    )
    .bind(user)
    .bind(limits.jobs)
    .bind(limits.cpu_millis)
    .bind(limits.memory_bytes)
    .bind(limits.buckets)
    .bind(limits.storage_bytes)
    .execute(db.pool())
    .await?;
    tracing::info!(%user, ?limits, "quota changed");
    Ok(())
}

/// Changes the defaults (the admin only); `default` means unlimited here.
pub async fn update_defaults(db: &Database, caller: &Caller, update: &Update) -> AppResult<Limits> {
    require_admin(caller)?;
    let mut limits = defaults(db).await?;
    update.apply(&mut limits);
    let limits = limits.over(Limits::NONE);
    crate::settings::write(db, DEFAULTS, &limits).await?;
    tracing::info!(?limits, "default quotas changed");
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits(jobs: Limit, cpu: Limit, memory: Limit) -> Limits {
        Limits {
            jobs,
            cpu_millis: cpu,
            memory_bytes: memory,
            ..Limits::NONE
        }
    }

    fn asked(cpu_millis: i64, memory_bytes: i64) -> Requested {
        Requested {
            cpu_millis,
            memory_bytes,
            gpus: 0,
        }
    }

    #[test]
    fn a_job_waits_while_its_owner_is_at_a_limit_and_never_runs_above_one() {
        let two = limits(Some(2), Some(1000), Some(1 << 30));
        let idle = Running::default();
        assert_eq!(fits(&two, idle, asked(500, 1 << 20)), Fit::Yes);
        let busy = Running {
            jobs: 2,
            cpu_millis: 1000,
            memory_bytes: 2 << 20,
        };
        assert!(matches!(fits(&two, busy, asked(0, 0)), Fit::Wait(r) if r.contains("jobs quota")));
        let cpu = Running {
            jobs: 1,
            cpu_millis: 600,
            memory_bytes: 0,
        };
        assert!(
            matches!(fits(&two, cpu, asked(500, 0)), Fit::Wait(r) if r.contains("cpu quota: 600 of 1000"))
        );
        assert!(matches!(fits(&two, idle, asked(1500, 0)), Fit::Never(r) if r.contains("1500")));
        assert_eq!(fits(&Limits::NONE, busy, asked(99_000, 1 << 40)), Fit::Yes);
    }

    #[test]
    fn own_values_override_defaults_and_minus_one_lifts_a_limit() {
        let defaults = Limits {
            jobs: Some(4),
            buckets: Some(5),
            ..Limits::NONE
        };
        let own = Limits {
            jobs: Some(UNLIMITED),
            storage_bytes: Some(10),
            ..Limits::default()
        };
        let applied = own.over(defaults);
        assert_eq!(applied.jobs, None);
        assert_eq!(applied.buckets, Some(5));
        assert_eq!(applied.storage_bytes, Some(10));
    }

    #[test]
    fn updates_read_upstreams_fields_and_name_what_is_wrong() {
        let update =
            Update::parse(&json!({"cpu": "1.5", "memory": "2Gi", "ephemeral_storage": ""}))
                .unwrap();
        assert_eq!(update.cpu_millis, Some(Some(1500)));
        assert_eq!(update.memory_bytes, Some(Some(2 << 30)));
        assert_eq!(update.jobs, None);
        let update = Update::parse(&json!({"jobs": 3, "minio": {"buckets": "unlimited",
            "storage_total": "default"}}))
        .unwrap();
        assert_eq!(update.jobs, Some(Some(3)));
        assert_eq!(update.buckets, Some(Some(UNLIMITED)));
        assert_eq!(update.storage_bytes, Some(None));
        for (body, field) in [
            (json!({"cpu": "lots"}), "cpu"),
            (json!({"jobs": "-3"}), "jobs"),
            (json!({"gpu": "1"}), "gpu"),
            (
                json!({"minio": {"storage_per_bucket": "1Gi"}}),
                "minio.storage_per_bucket",
            ),
            (json!({}), "body"),
            (json!([]), "body"),
        ] {
            let err = Update::parse(&body).unwrap_err();
            assert!(err.to_string().starts_with(field), "{body}: {err}");
        }
    }
}
