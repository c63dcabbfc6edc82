//! Jobs: the types the dashboard shows and the server functions behind the service page's
//! jobs table, log viewer and invoke panel.

use crate::AppError;
use leptos::prelude::*;
pub use model::jobs::*;

/// A page of a service's jobs (in `state`, after the job named `after`) with counts per state.
#[server(endpoint = "jobs/list")]
pub async fn list_jobs(
    service: String,
    state: Option<JobState>,
    #[server(default)] after: Option<String>,
) -> Result<JobList, AppError> {
    use crate::web::context;
    use domain::jobs;
    let caller = context::require_caller().await?;
    let app = context::state();
    let after = after.as_deref().filter(|a| !a.is_empty());
    jobs::list_for(&app.db, &app.jobs, &caller, &service, state, after).await
}

/// One job of a service, as its page shows it.
#[server(endpoint = "jobs/get")]
pub async fn get_job(service: String, job: String) -> Result<Job, AppError> {
    use crate::web::context;
    use domain::jobs;
    let caller = context::require_caller().await?;
    jobs::require(&context::state().db, &caller, &service, &job).await
}

/// The caller's runs per day over the last two weeks (the Jobs page's activity chart), from
/// the same records as `/system/metrics`.
#[server(endpoint = "jobs/activity")]
pub async fn job_activity() -> Result<Vec<model::usage::DailyUsage>, AppError> {
    use crate::web::context;
    use domain::usage::{self, Window};
    let caller = context::require_caller().await?;
    let state = context::state();
    const DAY: i64 = 86_400_000;
    let now = model::Timestamp::now();
    // Today and the 13 whole days before it.
    let window = Window {
        start: model::Timestamp::from_millis((now.millis() / DAY - 13) * DAY),
        end: now,
    };
    usage::daily(&state.db, &state.services, &caller, window).await
}

/// The last 24 hours at a glance, of every service the caller sees or of `service`: runs per
/// hour by outcome, their durations, and the space the buckets use (the service's own).
#[server(endpoint = "jobs/glance")]
pub async fn job_glance(
    #[server(default)] service: Option<String>,
) -> Result<model::usage::Glance, AppError> {
    use crate::web::context;
    use domain::{buckets, services, usage};
    let caller = context::require_caller().await?;
    let state = context::state();
    let only = match &service {
        Some(name) => {
            let service = services::require_visible(&state.db, &caller, name).await?;
            Some(Vec::from_iter(domain::storage::buckets_of(&service)))
        }
        None => None,
    };
    let mut glance = usage::glance(
        &state.db,
        &state.services,
        &caller,
        service.as_deref(),
        model::Timestamp::now(),
    )
    .await?;
    glance.storage =
        buckets::space_used(&state.db, &state.s3.client, &caller, only.as_deref()).await?;
    Ok(glance)
}

/// A page of the jobs the caller may see across services, newest first, for the Jobs page:
/// of one `service`, in one `state`, created `since`, after the job named `after`.
#[server(endpoint = "jobs/recent")]
pub async fn recent_jobs(
    #[server(default)] service: Option<String>,
    #[server(default)] state: Option<JobState>,
    #[server(default)] since: Option<model::Timestamp>,
    #[server(default)] after: Option<String>,
) -> Result<JobsPage, AppError> {
    use crate::web::context;
    use domain::jobs;
    let caller = context::require_caller().await?;
    let filter = jobs::JobFilter {
        service: service.as_deref().map(str::trim).filter(|s| !s.is_empty()),
        visible_to: Some(&caller),
        state,
        since,
        after: after.as_deref().filter(|a| !a.is_empty()),
        ..jobs::JobFilter::default()
    };
    let (jobs, next) = jobs::find(&context::state().db, &filter, jobs::PAGE).await?;
    Ok(JobsPage { jobs, next })
}

#[server(endpoint = "jobs/log")]
pub async fn job_log(service: String, job: String) -> Result<String, AppError> {
    use crate::web::context;
    use domain::jobs;
    let caller = context::require_caller().await?;
    let view = jobs::logs::LogView::Timestamped;
    jobs::log_for(&context::state().db, &caller, &service, &job, view).await
}

#[server(endpoint = "jobs/delete")]
pub async fn delete_jobs(service: String, jobs: Vec<String>) -> Result<u64, AppError> {
    use crate::web::context;
    use domain::jobs as domain;
    let caller = context::require_caller().await?;
    let state = context::state();
    domain::delete_named(&state.db, &state.jobs, &caller, &service, &jobs).await
}

#[server(endpoint = "jobs/retry")]
pub async fn retry_job(service: String, job: String) -> Result<(), AppError> {
    use crate::web::context;
    use domain::jobs;
    let caller = context::require_caller().await?;
    let state = context::state();
    jobs::retry(&state.db, &state.jobs, &caller, &service, &job).await
}

/// Stops a pending or running job; it ends failed, saying who stopped it.
#[server(endpoint = "jobs/stop")]
pub async fn stop_job(service: String, job: String) -> Result<(), AppError> {
    use crate::web::context;
    use domain::jobs;
    let caller = context::require_caller().await?;
    let state = context::state();
    jobs::stop(&state.db, &state.jobs, &caller, &service, &job).await
}

/// Runs a finished job again as a new job; answers the new job's name.
#[server(endpoint = "jobs/rerun")]
pub async fn rerun_job(service: String, job: String) -> Result<String, AppError> {
    use crate::web::context;
    use domain::jobs;
    let caller = context::require_caller().await?;
    let state = context::state();
    jobs::rerun(&state.db, &state.jobs, &caller, &service, &job).await
}

/// Runs the service at once on a payload (text, or base64 for files), like `POST /run`.
#[server(endpoint = "jobs/run")]
pub async fn run_service(service: String, payload: String) -> Result<RunResult, AppError> {
    use crate::web::context;
    use domain::jobs;
    let caller = context::require_caller().await?;
    let state = context::state();
    let (job, response) =
        jobs::run_sync(&state.db, &state.jobs, &caller, &service, payload.into()).await?;
    Ok(RunResult {
        job,
        response: String::from_utf8_lossy(&response).into_owned(),
    })
}
