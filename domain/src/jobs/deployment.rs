//! A service's deployment as upstream's `/system/services/{name}/deployment` reports it. A
//! service here runs jobs, so its state comes from its jobs (those the caller may see): ready
//! unless the latest run failed or waits for a retry for a platform reason, pending while its
//! image is being pulled.

use model::jobs::{JobState, LogLine};
use model::service::Service;
use model::services::{DeploymentLogEntry, DeploymentLogs, DeploymentStatus, DeploymentSummary};
use model::{AppResult, Timestamp};

use super::history::{JobScope, counts};
use super::logs::{self, LogView};
use super::queue::JOB_COLUMNS;
use super::{Job, Jobs};
use crate::access::Caller;
use crate::db::Database;
use crate::exposed::{self, Exposed};
use crate::services;

/// What upstream's clients show as the kind of runtime.
pub const RESOURCE_KIND: &str = "job_service";

/// Log lines `deployment/logs` returns unless asked for another number (upstream's default).
pub const TAIL_LINES: usize = 200;

pub async fn status(
    db: &Database,
    jobs: &Jobs,
    exposed: &Exposed,
    caller: &Caller,
    name: &str,
) -> AppResult<DeploymentStatus> {
    let service = services::require_visible(db, caller, name).await?;
    Ok(DeploymentStatus {
        service_name: service.name.clone(),
        namespace: exposed.namespace_of(&service),
        summary: summary(db, jobs, exposed, caller, &service).await?,
    })
}

/// The deployment of one service the caller sees (`?include=deployment` on each): its
/// instances for an exposed service.
pub async fn summary(
    db: &Database,
    jobs: &Jobs,
    exposed: &Exposed,
    caller: &Caller,
    service: &Service,
) -> AppResult<DeploymentSummary> {
    if service.is_exposed() {
        let stopped_by = exposed::stopped_by(db, &service.name).await?;
        return Ok(exposed.summary(service, stopped_by.as_deref()).await);
    }
    let scope = JobScope::of(caller, service);
    let counts = counts(db, Some(&service.name), scope.owner()).await?;
    let count = |state| {
        counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    };
    let latest = latest_run(db, &service.name, scope.owner()).await?;
    let (state, reason, since) = match (&latest, jobs.executor().image_pull(&service.image)) {
        (_, Some(percent)) => (
            "pending",
            format!("pulling the image {} ({percent}%)", service.image),
            None,
        ),
        (Some(job), None) => judge(job),
        (None, None) => ("ready", String::new(), None),
    };
    let since = match since {
        Some(at) => Some(at),
        None => updated_at(db, &service.name).await?,
    };
    Ok(DeploymentSummary {
        state: state.into(),
        reason,
        last_transition_time: since.map(Timestamp::rfc3339),
        active_instances: count(JobState::Running),
        affected_instances: count(JobState::Pending),
        resource_kind: RESOURCE_KIND.into(),
    })
}

/// The state the latest run puts the service in, why, and since when. A script's own failure
/// (an exit code) says nothing about the deployment; a run the platform could not carry out
/// does.
fn judge(job: &Job) -> (&'static str, String, Option<Timestamp>) {
    let reason = job.reason.clone().unwrap_or_default();
    let at = job.finished_at.or(job.started_at);
    match job.state {
        JobState::DeadLettered => ("failed", reason, at),
        JobState::Failed if job.exit_code.is_none() => ("failed", reason, at),
        JobState::Pending if job.reason.is_some() => ("degraded", reason, at),
        _ => ("ready", String::new(), job.finished_at),
    }
}

/// The newest job that has run at least once.
async fn latest_run(db: &Database, service: &str, owner: Option<&str>) -> AppResult<Option<Job>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs
         WHERE service = $1 AND ($2 IS NULL OR owner = $2) AND attempts > 0
         ORDER BY created_at DESC, name DESC LIMIT 1"
    ))
    .bind(service)
    .bind(owner)
    .fetch_optional(db.pool())
    .await?)
}

async fn updated_at(db: &Database, service: &str) -> AppResult<Option<Timestamp>> {
    Ok(
        sqlx::query_scalar("SELECT updated_at FROM services WHERE name = $1")
            .bind(service)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// The last `tail` lines of the latest run's log, each with its time when `timestamps`; of its
/// instances for an exposed service.
pub async fn logs(
    db: &Database,
    exposed: &Exposed,
    caller: &Caller,
    name: &str,
    timestamps: bool,
    tail: usize,
) -> AppResult<DeploymentLogs> {
    let service = services::require_visible(db, caller, name).await?;
    let scope = JobScope::of(caller, &service);
    let mut answer = DeploymentLogs {
        service_name: service.name.clone(),
        available: false,
        message: String::new(),
        entries: Vec::new(),
    };
    if service.is_exposed() {
        match exposed.logs(&service, timestamps, tail).await {
            Ok(entries) => {
                answer.available = !entries.is_empty();
                answer.entries = entries;
            }
            Err(why) => answer.message = why,
        }
        return Ok(answer);
    }
    let Some(job) = latest_run(db, &service.name, scope.owner()).await? else {
        answer.message = "No job of this service has run yet.".into();
        return Ok(answer);
    };
    let stored = logs::read(db, &job.name, LogView::Stored).await?;
    let lines: Vec<&str> = stored.lines().collect();
    answer.entries = lines[lines.len().saturating_sub(tail)..]
        .iter()
        .map(|line| {
            let line = LogLine::parse(line);
            DeploymentLogEntry {
                timestamp: (timestamps && !line.time.is_empty()).then(|| line.time.to_string()),
                message: line.text.to_string(),
            }
        })
        .collect();
    answer.available = !answer.entries.is_empty();
    answer.message = format!(
        "The log of job {} ({}), the latest to run.",
        job.name,
        job.state.oscar_status()
    );
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::jobs::Trigger;

    fn job(state: JobState, exit_code: Option<i64>, reason: Option<&str>) -> Job {
        Job {
            name: "j".into(),
            service: "s".into(),
            owner: "o".into(),
            trigger: Trigger::Api,
            input: None,
            state,
            attempts: 1,
            created_at: Timestamp::from_millis(1),
            started_at: Some(Timestamp::from_millis(2)),
            finished_at: Some(Timestamp::from_millis(3)),
            exit_code,
            reason: reason.map(String::from),
            outputs: Vec::new(),
            log_size: 0,
            delegated_to: None,
            delegated_url: None,
            delegated_from: None,
        }
    }

    #[test]
    fn only_failures_of_the_platform_make_a_service_unhealthy() {
        let pull = "image pull failed: manifest unknown";
        let cases = [
            (job(JobState::Succeeded, Some(0), None), "ready"),
            (job(JobState::Failed, Some(3), Some("exit code 3")), "ready"),
            (job(JobState::Running, None, None), "ready"),
            (job(JobState::Failed, None, Some(pull)), "failed"),
            (job(JobState::DeadLettered, None, Some(pull)), "failed"),
            (job(JobState::Pending, None, Some(pull)), "degraded"),
        ];
        for (job, want) in cases {
            let (state, reason, at) = judge(&job);
            assert_eq!(state, want, "{job:?}");
            assert_eq!(reason.is_empty(), want == "ready", "{job:?}");
            if want != "ready" {
                assert_eq!(at, Some(Timestamp::from_millis(3)));
            }
        }
    }
}
