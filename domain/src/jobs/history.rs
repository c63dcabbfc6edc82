//! The job history callers read and prune: pages and counts for the dashboard and the REST
//! API, who sees which jobs, logs, deletion, retries and retention.

use super::queue::{self, Handover, JOB_COLUMNS, NewJob, enqueue, event_of, get};
use super::{Job, JobList, JobState, Jobs, Trigger};
use crate::access::Caller;
use crate::db::Database;
use crate::services;
use model::jobs::JobActivity;
use model::service::Service;
use model::{AppError, AppResult, Timestamp};

/// Which jobs a listing shows, newest first. Every condition left out matches every job.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobFilter<'a> {
    pub service: Option<&'a str>,
    /// Only the jobs this user started.
    pub owner: Option<&'a str>,
    /// Only the jobs this caller may see: every job for the admin, else their own and those
    /// of the services they own.
    pub visible_to: Option<&'a Caller>,
    pub state: Option<JobState>,
    /// Only jobs created at or after this time.
    pub since: Option<Timestamp>,
    /// The last job of the previous page.
    pub after: Option<&'a str>,
}

/// Up to `limit` jobs the filter matches, newest first, and the name to ask for the next
/// page `after` when there are more.
pub async fn find(
    db: &Database,
    filter: &JobFilter<'_>,
    limit: i64,
) -> AppResult<(Vec<Job>, Option<String>)> {
    // Newest first, ties broken by name, so a page boundary is a (created_at, name) pair.
    let boundary = match filter.after {
        Some(name) => get(db, name).await?.map(|j| (j.created_at, j.name)),
        None => None,
    };
    let (admin, viewer) = match filter.visible_to {
        Some(caller) => (caller.admin, caller.id.as_str()),
        None => (true, ""),
    };
    let mut jobs: Vec<Job> = sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs
         WHERE ($1 IS NULL OR service = $1) AND ($2 IS NULL OR owner = $2)
           AND ($3 IS NULL OR state = $3) AND ($4 IS NULL OR created_at >= $4)
           AND ($5 IS NULL OR created_at < $5 OR (created_at = $5 AND name < $6))
           AND ($7 OR owner = $8 OR service IN (SELECT name FROM services WHERE owner = $8))
         ORDER BY created_at DESC, name DESC LIMIT $9"
    ))
    .bind(filter.service)
    .bind(filter.owner)
    .bind(filter.state)
    .bind(filter.since)
    .bind(boundary.as_ref().map(|b| b.0))
    .bind(boundary.as_ref().map(|b| b.1.clone()).unwrap_or_default())
    .bind(admin)
    .bind(viewer)
    .bind(limit + 1)
    .fetch_all(db.pool())
    .await?;
    let more = jobs.len() as i64 > limit;
    jobs.truncate(limit.max(0) as usize);
    let next = more.then(|| jobs.last().map(|j| j.name.clone())).flatten();
    Ok((jobs, next))
}

/// Job totals of the named services, over the jobs the caller may see.
pub async fn activity(
    db: &Database,
    caller: &Caller,
    services: &[&str],
) -> AppResult<std::collections::HashMap<String, JobActivity>> {
    if services.is_empty() {
        return Ok(Default::default());
    }
    let names = (3..services.len() + 3)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    // `job_activity` holds the counts per service and job owner (kept by triggers).
    let sql = format!(
        "SELECT service, CAST(SUM(total) AS BIGINT) AS total,
                CAST(SUM(running) AS BIGINT) AS running, CAST(SUM(failed) AS BIGINT) AS failed,
                MAX(last) AS last
         FROM job_activity
         WHERE service IN ({names})
           AND ($1 OR owner = $2 OR service IN (SELECT name FROM services WHERE owner = $2))
         GROUP BY service"
    );
    let mut query = sqlx::query_as(&sql).bind(caller.admin).bind(&caller.id);
    for service in services {
        query = query.bind(*service);
    }
    let rows: Vec<ServiceActivity> = query.fetch_all(db.pool()).await?;
    Ok(rows.into_iter().map(|r| (r.service, r.activity)).collect())
}

#[derive(sqlx::FromRow)]
struct ServiceActivity {
    service: String,
    #[sqlx(flatten)]
    activity: JobActivity,
}

/// How many jobs are in each state: of `service` (every service with None), of `owner` only
/// when given.
pub async fn counts(
    db: &Database,
    service: Option<&str>,
    owner: Option<&str>,
) -> AppResult<Vec<(JobState, i64)>> {
    let mut counts: Vec<(JobState, i64)> = sqlx::query_as(
        "SELECT state, COUNT(*) AS n FROM jobs
         WHERE ($1 IS NULL OR service = $1) AND ($2 IS NULL OR owner = $2)
         GROUP BY state",
    )
    .bind(service)
    .bind(owner)
    .fetch_all(db.pool())
    .await?;
    counts.sort();
    Ok(counts)
}

/// Whose jobs of a service the caller sees: the service owner and the admin see every job,
/// others (the service is shared with them) only the jobs they started. A service the caller
/// may not see is a 404.
pub async fn authorize(db: &Database, caller: &Caller, service: &str) -> AppResult<JobScope> {
    let service = services::require_visible(db, caller, service).await?;
    Ok(JobScope::of(caller, &service))
}

/// The owner the caller's job queries are limited to (None: every job of the service).
pub struct JobScope(pub Option<String>);

impl JobScope {
    pub(crate) fn of(caller: &Caller, service: &Service) -> Self {
        Self((!caller.manages(&service.owner)).then(|| caller.id.clone()))
    }

    pub fn owner(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// Jobs per page of the dashboard's tables.
pub const PAGE: i64 = 50;

/// The jobs table of the service page: a page of its jobs (in `state`, after the job named
/// `after`), with counts per state, and how far the pull of the service's image is while one
/// runs.
pub async fn list_for(
    db: &Database,
    jobs: &Jobs,
    caller: &Caller,
    service: &str,
    state: Option<JobState>,
    after: Option<&str>,
) -> AppResult<JobList> {
    let visible = services::require_visible(db, caller, service).await?;
    let scope = JobScope::of(caller, &visible);
    let filter = JobFilter {
        service: Some(service),
        owner: scope.owner(),
        state,
        after,
        ..JobFilter::default()
    };
    let (found, next) = find(db, &filter, PAGE).await?;
    Ok(JobList {
        jobs: found,
        counts: counts(db, Some(service), scope.owner()).await?,
        pulling: jobs.executor().image_pull(&visible.image),
        next,
    })
}

/// A job of `service` the caller may see, or 404.
pub async fn require(db: &Database, caller: &Caller, service: &str, job: &str) -> AppResult<Job> {
    let scope = authorize(db, caller, service).await?;
    get(db, job)
        .await?
        .filter(|j| j.service == service && scope.owner().is_none_or(|o| j.owner == o))
        .ok_or_else(|| AppError::NotFound(format!("service {service:?} has no job named {job:?}")))
}

pub async fn log_for(
    db: &Database,
    caller: &Caller,
    service: &str,
    job: &str,
    view: super::logs::LogView,
) -> AppResult<String> {
    require(db, caller, service, job).await?;
    super::logs::read(db, job, view).await
}

/// Deletes the named jobs of a service with their logs (running ones are left alone: their
/// process would go on writing). Returns how many went.
pub async fn delete_named(
    db: &Database,
    jobs: &Jobs,
    caller: &Caller,
    service: &str,
    names: &[String],
) -> AppResult<u64> {
    let scope = authorize(db, caller, service).await?;
    let mut deleted = 0;
    for name in names {
        // Someone else's job is as good as missing: 404, not a silent 0.
        if !get(db, name)
            .await?
            .is_some_and(|j| j.service == service && scope.owner().is_none_or(|o| j.owner == o))
        {
            return Err(AppError::NotFound(format!(
                "service {service:?} has no job named {name:?}"
            )));
        }
        let done =
            // Not while a federation member may have it (see `abandon`).
            sqlx::query(
                "DELETE FROM jobs WHERE name = $1 AND service = $2 AND state <> 'running'
                 AND NOT (state = 'pending' AND (lease_owner IS NOT NULL OR delegated_to IS NOT NULL))",
            )
                .bind(name)
                .bind(service)
                .execute(db.pool())
                .await?;
        if done.rows_affected() == 1 {
            deleted += 1;
            jobs.changed(service, name);
        }
    }
    Ok(deleted)
}

/// `DELETE /system/logs/{service}`: finished jobs that succeeded, or with `all` every job that
/// is not running. Returns how many went.
pub async fn delete_finished(
    db: &Database,
    jobs: &Jobs,
    caller: &Caller,
    service: &str,
    all: bool,
) -> AppResult<u64> {
    let scope = authorize(db, caller, service).await?;
    let done = sqlx::query(
        "DELETE FROM jobs WHERE service = $1 AND (state = 'succeeded' OR ($2 AND state <> 'running'
                AND NOT (state = 'pending'
                         AND (lease_owner IS NOT NULL OR delegated_to IS NOT NULL))))
           AND ($3 IS NULL OR owner = $3)",
    )
    .bind(service)
    .bind(all)
    .bind(scope.owner())
    .execute(db.pool())
    .await?;
    jobs.changed(service, "*");
    Ok(done.rows_affected())
}

/// Queues a dead-lettered job again, with a fresh set of attempts.
pub async fn retry(
    db: &Database,
    jobs: &Jobs,
    caller: &Caller,
    service: &str,
    job: &str,
) -> AppResult<()> {
    let found = require(db, caller, service, job).await?;
    if found.state != JobState::DeadLettered {
        return Err(AppError::Conflict(format!(
            "job {job:?} is {}, only dead-lettered jobs can be retried",
            found.state.label().to_lowercase()
        )));
    }
    sqlx::query(
        "UPDATE jobs SET state = 'pending', attempts = 0, offer_tries = 0, run_after = $1,
                         reason = NULL, finished_at = NULL
         WHERE name = $2 AND state = 'dead_lettered'",
    )
    .bind(Timestamp::now())
    .bind(job)
    .execute(db.pool())
    .await?;
    jobs.changed(service, job);
    Ok(())
}

/// Stops a job: a pending one never runs, a running one's process is ended (by the server
/// running it: at once when that is this one, else when it next renews its leases). Either
/// ends failed, with who stopped it as its reason; its outputs are not uploaded.
pub async fn stop(
    db: &Database,
    jobs: &Jobs,
    caller: &Caller,
    service: &str,
    job: &str,
) -> AppResult<()> {
    let found = require(db, caller, service, job).await?;
    let reason = format!("stopped by {}", caller.id);
    let stopped = match found.state {
        JobState::Pending => queue::abandon(db, job, &reason).await?,
        JobState::Running => queue::request_stop(db, job, &reason).await?,
        _ => false,
    };
    if !stopped {
        let now = get(db, job).await?;
        if let Some(member) = now
            .as_ref()
            .filter(|j| j.state == JobState::Pending)
            .map(|j| j.delegated_to.clone().unwrap_or_else(|| "a member".into()))
        {
            return Err(AppError::Conflict(format!(
                "job {job:?} is being handed to the federation member {member}, which may run it; stop it there, or here once the member has answered"
            )));
        }
        // Finished meanwhile, or before: nothing to stop.
        let now = now.map_or(found.state, |j| j.state);
        return Err(AppError::Conflict(format!(
            "job {job:?} is {}; only pending and running jobs can be stopped",
            now.label().to_lowercase()
        )));
    }
    jobs.stop_here(job, &reason);
    jobs.changed(service, job);
    Ok(())
}

/// Runs a finished job again as a new job for the same person: the same event, input and
/// trigger, past the one-job-per-object-version rule (running it again is the point). A
/// synchronous run answered its caller and is not run again; Run now makes a new one.
/// Returns the new job's name.
pub async fn rerun(
    db: &Database,
    jobs: &Jobs,
    caller: &Caller,
    service: &str,
    job: &str,
) -> AppResult<String> {
    let found = require(db, caller, service, job).await?;
    if !found.state.is_final() {
        return Err(AppError::Conflict(format!(
            "job {job:?} is {}; it can run again once it has finished",
            found.state.label().to_lowercase()
        )));
    }
    if found.trigger == Trigger::Sync {
        return Err(AppError::Conflict(format!(
            "job {job:?} was a synchronous run, which answered its caller; run the service again instead"
        )));
    }
    let again = NewJob {
        service: found.service,
        owner: found.owner,
        trigger: found.trigger,
        event: event_of(db, job).await?,
        input: found.input,
        object: None,
        handover: Handover::default(),
    };
    Ok(enqueue(db, jobs, again).await?.name)
}

/// Removes a deleted service's jobs and what they remembered.
pub async fn forget_service(db: &Database, service: &str) -> AppResult<()> {
    sqlx::query("DELETE FROM jobs WHERE service = $1")
        .bind(service)
        .execute(db.pool())
        .await?;
    sqlx::query("DELETE FROM job_inputs WHERE service = $1")
        .bind(service)
        .execute(db.pool())
        .await?;
    sqlx::query("DELETE FROM input_polls WHERE service = $1")
        .bind(service)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Deletes finished jobs older than the retention period, and the object versions seen
/// before it. Returns how many jobs went.
pub async fn delete_expired(db: &Database, older_than: Timestamp) -> AppResult<u64> {
    let done = sqlx::query(
        "DELETE FROM jobs WHERE created_at < $1
         AND state IN ('succeeded', 'failed', 'dead_lettered', 'delegated')",
    )
    .bind(older_than)
    .execute(db.pool())
    .await?;
    sqlx::query("DELETE FROM job_inputs WHERE seen_at < $1")
        .bind(older_than)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}
