//! The job table as a durable queue: enqueueing, claims and leases, recording how runs end,
//! and synchronous runs. What callers read and prune of it is `history`.

use model::function::event::STORAGE_EVENT_LIMIT;
use std::time::Duration;

use super::executor::{EventBody, Requested};
use super::{Job, JobState, Jobs, Trigger, job_name};
use crate::access::Caller;
use crate::db::Database;
use crate::quotas::{self, Fit, Limits};
use crate::services;
use model::columns::JsonList;
use model::{AppError, AppResult, Timestamp};

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub service: String,
    pub owner: String,
    pub trigger: Trigger,
    /// The job's `EVENT`.
    pub event: String,
    /// `bucket/key` of the input object.
    pub input: Option<String>,
    /// The object version (see `model::function::event::StorageEvent::object_version`): at most one
    /// job is ever made per service and version.
    pub object: Option<String>,
    pub handover: Handover,
}

/// What a federation member handing a job here says of it (`X-Delegated-Job-ID`,
/// `X-Delegated-From`): the job keeps its name, so a hand-off sent twice makes one job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handover {
    pub job: Option<String>,
    pub from: Option<String>,
}

/// Where an event went: the job made for it, or the one already made for the same object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub name: String,
    pub created: bool,
}

/// Stores a pending job (durably: when this returns, the job survives a crash) unless the
/// object version already has one.
pub async fn enqueue(db: &Database, jobs: &Jobs, new: NewJob) -> AppResult<Enqueued> {
    let enqueued = insert(db, &new, JobState::Pending, None, Requested::default()).await?;
    if enqueued.created {
        jobs.changed(&new.service, &enqueued.name);
    }
    Ok(enqueued)
}

/// Inserts the job row (claimed by `lease_owner` at once when given, for synchronous runs,
/// holding what it `asked` for).
async fn insert(
    db: &Database,
    new: &NewJob,
    state: JobState,
    lease: Option<(&str, Timestamp)>,
    asked: Requested,
) -> AppResult<Enqueued> {
    let name = new
        .handover
        .job
        .clone()
        .unwrap_or_else(|| job_name(&new.service));
    let now = Timestamp::now();
    let mut tx = db.begin_write().await?;
    if new.handover.job.is_some() {
        let existing: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT service, delegated_from FROM jobs WHERE name = $1")
                .bind(&name)
                .fetch_optional(&mut *tx)
                .await?;
        match existing {
            // Handed over before by the same cluster, and the answer was lost: the same job.
            Some((service, from)) if service == new.service && from == new.handover.from => {
                return Ok(Enqueued {
                    name,
                    created: false,
                });
            }
            // Another service's, or this cluster's own (a cluster that is its own member
            // would otherwise mark the job handed over, and nobody would run it).
            Some(_) => {
                return Err(AppError::Conflict(format!(
                    "X-Delegated-Job-ID: a job named {name:?} exists here that was not handed over by this cluster"
                )));
            }
            None => {}
        }
    }
    if let Some(object) = &new.object {
        let inserted = sqlx::query(
            "INSERT INTO job_inputs (service, object, job, seen_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(&new.service)
        .bind(object)
        .bind(&name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            let (existing,): (String,) =
                sqlx::query_as("SELECT job FROM job_inputs WHERE service = $1 AND object = $2")
                    .bind(&new.service)
                    .bind(object)
                    .fetch_one(&mut *tx)
                    .await?;
            return Ok(Enqueued {
                name: existing,
                created: false,
            });
        }
    }
    let (lease_owner, lease_until) = lease.unzip();
    sqlx::query(
        "INSERT INTO jobs (name, service, owner, trigger, event, input, state, attempts, run_after,
                           lease_owner, lease_until, created_at, started_at, cpu_millis,
                           memory_bytes, delegated_from)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&name)
    .bind(&new.service)
    .bind(&new.owner)
    .bind(new.trigger)
    .bind(&new.event)
    .bind(&new.input)
    .bind(state)
    .bind(i64::from(lease.is_some()))
    .bind(now)
    .bind(lease_owner)
    .bind(lease_until)
    .bind(now)
    .bind(lease.map(|_| now))
    .bind(asked.cpu_millis)
    .bind(asked.memory_bytes)
    .bind(&new.handover.from)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Enqueued {
        name,
        created: true,
    })
}

/// A claim's terms: the service's limit of running jobs, what the job asks for and its
/// owner's quota.
pub(crate) struct Claim<'a> {
    pub service: &'a str,
    pub limit: u32,
    pub owner: &'a str,
    pub asked: Requested,
    pub quota: &'a Limits,
}

/// Claims a pending job for this server, unless its service already runs `limit` jobs or its
/// owner's running jobs leave no room in their quota, or it is being (or may have been)
/// handed to a federation member (`federation::delegate`). The conditional update makes the claim
/// exclusive: of two servers racing for a row, the second finds it no longer pending. Running
/// jobs are counted in `job_activity`, not by a scan of the service's history.
pub(crate) async fn claim(
    db: &Database,
    instance: &str,
    lease_until: Timestamp,
    job: &str,
    terms: &Claim<'_>,
) -> AppResult<bool> {
    let unlimited = model::quotas::UNLIMITED;
    let claimed = sqlx::query(
        "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2,
                         attempts = attempts + 1, started_at = $3, cpu_millis = $7,
                         memory_bytes = $8
         WHERE name = $4 AND state = 'pending'
           AND lease_owner IS NULL AND delegated_to IS NULL
           AND (SELECT COALESCE(SUM(running), 0) FROM job_activity WHERE service = $5) < $6
           AND ($10 < 0 OR (SELECT COUNT(*) FROM jobs
                            WHERE owner = $9 AND state = 'running') < $10)
           AND ($11 < 0 OR (SELECT COALESCE(SUM(cpu_millis), 0) FROM jobs
                            WHERE owner = $9 AND state = 'running') + $7 <= $11)
           AND ($12 < 0 OR (SELECT COALESCE(SUM(memory_bytes), 0) FROM jobs
                            WHERE owner = $9 AND state = 'running') + $8 <= $12)",
    )
    .bind(instance)
    .bind(lease_until)
    .bind(Timestamp::now())
    .bind(job)
    .bind(terms.service)
    .bind(i64::from(terms.limit))
    .bind(terms.asked.cpu_millis)
    .bind(terms.asked.memory_bytes)
    .bind(terms.owner)
    .bind(terms.quota.jobs.unwrap_or(unlimited))
    .bind(terms.quota.cpu_millis.unwrap_or(unlimited))
    .bind(terms.quota.memory_bytes.unwrap_or(unlimited))
    .execute(db.pool())
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Says why a pending job waits (a quota), once.
pub(crate) async fn note_waiting(db: &Database, job: &str, reason: &str) -> AppResult<bool> {
    let noted = sqlx::query(
        "UPDATE jobs SET reason = $1
         WHERE name = $2 AND state = 'pending' AND (reason IS NULL OR reason <> $1)",
    )
    .bind(reason)
    .bind(job)
    .execute(db.pool())
    .await?;
    Ok(noted.rows_affected() == 1)
}

/// A pending job whose time has come.
#[derive(sqlx::FromRow)]
pub(crate) struct Ready {
    pub name: String,
    pub service: String,
    pub owner: String,
    /// Since when it could run.
    pub run_after: Timestamp,
    #[sqlx(flatten)]
    pub waiting: crate::federation::delegate::Waiting,
}

/// Pending jobs whose time has come, oldest first.
pub(crate) async fn ready(db: &Database, limit: i64) -> AppResult<Vec<Ready>> {
    Ok(sqlx::query_as(
        "SELECT name, service, owner, run_after, created_at, delegate_after, delegated_to,
                delegated_from
         FROM jobs WHERE state = 'pending' AND run_after <= $1 AND lease_owner IS NULL
         ORDER BY created_at LIMIT $2",
    )
    .bind(Timestamp::now())
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Extends the leases of every job this server runs or offers to federation members. Returns
/// those of them asked to stop (by any server), with who asked: the same rows, read by the
/// same statement.
pub(crate) async fn renew_leases(
    db: &Database,
    instance: &str,
    until: Timestamp,
) -> AppResult<Vec<(String, String)>> {
    let renewed: Vec<(String, Option<String>)> = sqlx::query_as(
        "UPDATE jobs SET lease_until = $1
         WHERE lease_owner = $2 AND state IN ('running', 'pending')
         RETURNING name, stop_requested",
    )
    .bind(until)
    .bind(instance)
    .fetch_all(db.pool())
    .await?;
    Ok(renewed
        .into_iter()
        .filter_map(|(job, stop)| Some((job, stop?)))
        .collect())
}

/// Jobs whose server stopped renewing their lease: queued again (or dead-lettered after too
/// many attempts); synchronous runs fail, their caller is gone. Returns the affected jobs.
pub(crate) async fn recover_expired(
    db: &Database,
    max_attempts: u32,
) -> AppResult<Vec<(String, String)>> {
    let now = Timestamp::now();
    let rows: Vec<(String, String, Trigger, i64, Option<String>)> = sqlx::query_as(
        "SELECT name, service, trigger, attempts, stop_requested FROM jobs
         WHERE state = 'running' AND lease_until < $1",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    let mut recovered = Vec::new();
    for (name, service, trigger, attempts, stop_requested) in rows {
        let (state, reason) = if let Some(stopped) = stop_requested {
            (JobState::Failed, stopped)
        } else if trigger == Trigger::Sync {
            (
                JobState::Failed,
                "the server stopped during this synchronous run".to_string(),
            )
        } else if attempts >= i64::from(max_attempts) {
            (
                JobState::DeadLettered,
                format!("the server running it stopped ({attempts} attempts)"),
            )
        } else {
            (
                JobState::Pending,
                "the server running it stopped; queued again".to_string(),
            )
        };
        let done = sqlx::query(
            "UPDATE jobs SET state = $1, reason = $2, lease_owner = NULL, lease_until = NULL,
                             run_after = $3, finished_at = $4
             WHERE name = $5 AND state = 'running' AND lease_until < $3",
        )
        .bind(state)
        .bind(&reason)
        .bind(now)
        .bind(state.is_final().then_some(now))
        .bind(&name)
        .execute(db.pool())
        .await?;
        if done.rows_affected() == 1 {
            tracing::warn!(job = %name, state = state.as_str(), "job lease expired");
            recovered.push((name, service));
        }
    }
    Ok(recovered)
}

/// Gives this server's running jobs (or just `job`) back to the queue, at shutdown or when
/// their bookkeeping failed: the attempt they were in does not count. Jobs asked to stop end
/// failed instead.
pub(crate) async fn release(db: &Database, instance: &str, job: Option<&str>) -> AppResult<()> {
    sqlx::query(
        "UPDATE jobs SET state = CASE WHEN stop_requested IS NULL THEN 'pending' ELSE 'failed' END,
                         reason = COALESCE(stop_requested, reason),
                         finished_at = CASE WHEN stop_requested IS NULL THEN NULL ELSE $1 END,
                         lease_owner = NULL, lease_until = NULL,
                         attempts = attempts - 1, run_after = $1
         WHERE lease_owner = $2 AND state = 'running' AND trigger <> 'sync'
           AND ($3 IS NULL OR name = $3)",
    )
    .bind(Timestamp::now())
    .bind(instance)
    .bind(job)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Ends a pending job that can no longer run; false when it was not pending (any more), or
/// it is with a federation member: being offered, or offered without an answer (the member
/// may run it).
pub(crate) async fn abandon(db: &Database, job: &str, reason: &str) -> AppResult<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'failed', reason = $1, finished_at = $2
         WHERE name = $3 AND state = 'pending' AND lease_owner IS NULL AND delegated_to IS NULL",
    )
    .bind(reason)
    .bind(Timestamp::now())
    .bind(job)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Asks the server running `job` to stop it, `reason` saying who asked; false when it was not
/// running (any more).
pub(crate) async fn request_stop(db: &Database, job: &str, reason: &str) -> AppResult<bool> {
    let done =
        sqlx::query("UPDATE jobs SET stop_requested = $1 WHERE name = $2 AND state = 'running'")
            .bind(reason)
            .bind(job)
            .execute(db.pool())
            .await?;
    Ok(done.rows_affected() == 1)
}

/// How a run ended, to record.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Succeeded {
        outputs: Vec<String>,
    },
    Failed {
        exit_code: Option<i32>,
        reason: String,
        outputs: Vec<String>,
    },
    /// A platform failure: retried with backoff, dead-lettered after the last attempt.
    Error {
        reason: String,
    },
    /// A platform failure caused by an outage the job waits out (the store unreachable): queued
    /// again without counting the attempt.
    Waiting {
        reason: String,
    },
}

impl Outcome {
    /// How usage records and metrics name it: succeeded, failed (the script) or error (the
    /// platform).
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Succeeded { .. } => "succeeded",
            Self::Failed { .. } => "failed",
            Self::Error { .. } | Self::Waiting { .. } => "error",
        }
    }
}

/// Records the end of a run this server holds the lease of, and what the run used (`asked`,
/// for as long as it ran) in `job_usage`, together. Returns the new state, or None if the
/// lease was lost meanwhile (another server owns the job now).
pub(crate) async fn finish(
    db: &Database,
    jobs: &Jobs,
    job: &str,
    outcome: &Outcome,
    asked: Requested,
) -> AppResult<Option<JobState>> {
    let now = Timestamp::now();
    let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM jobs WHERE name = $1")
        .bind(job)
        .fetch_optional(db.pool())
        .await?
        .unwrap_or_default();
    let (state, exit_code, reason, outputs, run_after) = match outcome {
        Outcome::Succeeded { outputs } => {
            (JobState::Succeeded, Some(0), None, outputs.clone(), now)
        }
        Outcome::Failed {
            exit_code,
            reason,
            outputs,
        } => (
            JobState::Failed,
            exit_code.map(i64::from),
            Some(reason.clone()),
            outputs.clone(),
            now,
        ),
        Outcome::Error { reason } => {
            let last = attempts >= i64::from(jobs.settings().max_attempts);
            let state = if last {
                JobState::DeadLettered
            } else {
                JobState::Pending
            };
            let reason = if last {
                format!("{reason} (gave up after {attempts} attempts)")
            } else {
                format!("{reason} (attempt {attempts}; retrying)")
            };
            (
                state,
                None,
                Some(reason),
                Vec::new(),
                now + backoff(attempts),
            )
        }
        Outcome::Waiting { reason } => (
            JobState::Pending,
            None,
            Some(reason.clone()),
            Vec::new(),
            now,
        ),
    };
    let uncounted = i64::from(matches!(outcome, Outcome::Waiting { .. }));
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE jobs SET state = $1, exit_code = $2, reason = $3, outputs = $4, run_after = $5,
                         finished_at = $6, lease_owner = NULL, lease_until = NULL,
                         attempts = attempts - $9,
                         event = CASE WHEN $10 AND LENGTH(event) > $11 THEN '' ELSE event END
         WHERE name = $7 AND state = 'running' AND lease_owner = $8",
    )
    .bind(state)
    .bind(exit_code)
    .bind(reason)
    .bind(JsonList(outputs))
    .bind(run_after)
    .bind(state.is_final().then_some(now))
    .bind(job)
    .bind(jobs.instance())
    .bind(uncounted)
    // A job that ran to its end is never run again (dead-lettered ones may be retried): a
    // large body it was invoked with need not stay in the database for its history.
    .bind(matches!(state, JobState::Succeeded | JobState::Failed))
    .bind(KEPT_EVENT_BYTES)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO job_usage (job, service, owner, trigger, outcome, started_at, finished_at,
                                cpu_millis, memory_bytes, gpus)
         SELECT name, service, owner, trigger, $2, started_at, $3, $4, $5, $6
         FROM jobs WHERE name = $1 AND started_at IS NOT NULL",
    )
    .bind(job)
    .bind(outcome.label())
    .bind(now)
    .bind(asked.cpu_millis)
    .bind(asked.memory_bytes)
    .bind(asked.gpus)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(state))
}

/// Events up to this size stay with a finished job; larger ones are dropped when it ends.
pub(crate) const KEPT_EVENT_BYTES: i64 = 4096;

/// 1 s, 2 s, 4 s, … capped at 5 minutes.
fn backoff(attempts: i64) -> Duration {
    let exponent = attempts.clamp(1, 20) - 1;
    Duration::from_secs((1u64 << exponent).min(300))
}

pub(super) const JOB_COLUMNS: &str =
    "name, service, owner, trigger, input, state, attempts, created_at,
    started_at, finished_at, exit_code, reason, outputs, log_size, delegated_to, delegated_url,
    delegated_from";

pub async fn get(db: &Database, job: &str) -> AppResult<Option<Job>> {
    Ok(
        sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE name = $1"))
            .bind(job)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// The event a job was made for.
pub(crate) async fn event_of(db: &Database, job: &str) -> AppResult<String> {
    Ok(sqlx::query_scalar("SELECT event FROM jobs WHERE name = $1")
        .bind(job)
        .fetch_one(db.pool())
        .await?)
}

/// Runs a service at once on a payload and waits for the answer (`POST /run`, the dashboard's
/// invoke panel). The job is recorded like any other, with trigger `sync`.
pub async fn run_sync(
    db: &Database,
    jobs: &Jobs,
    caller: &Caller,
    service: &str,
    payload: EventBody,
) -> AppResult<(Job, Vec<u8>)> {
    // Anyone the service is shared with may invoke it; the job is theirs.
    let found = services::require_visible(db, caller, service).await?;
    // Larger bodies are payloads to the supervisor too.
    let small = match &payload {
        EventBody::Text(text) => Some(text.as_bytes().to_vec()),
        EventBody::File(path) => match tokio::fs::metadata(path).await {
            Ok(meta) if meta.len() as usize <= STORAGE_EVENT_LIMIT => {
                tokio::fs::read(path).await.ok()
            }
            _ => None,
        },
    };
    // An event routed to another store reaches the job wrapped with it.
    let mut payload = payload;
    if let Some(body) = small
        && let Some(routed) = super::events::invocation_event(&found, &body)?.and_then(|i| i.routed)
    {
        payload = EventBody::Text(routed);
    }
    let new = NewJob {
        service: service.to_string(),
        owner: caller.id.clone(),
        trigger: Trigger::Sync,
        // A spooled body goes to the job from its file; nobody runs this job again.
        event: match &payload {
            EventBody::Text(text) => text.clone(),
            EventBody::File(_) => String::new(),
        },
        input: None,
        object: None,
        handover: Handover::default(),
    };
    // Nobody waits here for a quota: the caller is told at once and may try again.
    let asked = Requested::of(&found);
    match quotas::job_fits(db, &caller.id, asked).await? {
        Fit::Yes => {}
        Fit::Wait(reason) => return Err(AppError::TooManyRequests(format!("quota: {reason}"))),
        Fit::Never(reason) => return Err(AppError::Forbidden(format!("quota: {reason}"))),
    }
    let lease_until = Timestamp::now() + jobs.settings().lease;
    let enqueued = insert(
        db,
        &new,
        JobState::Running,
        Some((jobs.instance(), lease_until)),
        asked,
    )
    .await?;
    jobs.changed(service, &enqueued.name);
    let response =
        super::dispatch::execute(db, jobs, &enqueued.name, found, true, Some(payload)).await?;
    let job = get(db, &enqueued.name)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("job {:?} was deleted", enqueued.name)))?;
    Ok((job, response))
}
