//! Invocation (`/job`, `/run`) and the job history (`/system/logs`), oscar-api.md §3.3-3.4.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Principal;
use super::auth::Client;
use super::auth::{invoker, require_bearer};
use super::body::limited;
use super::openapi::documented;
use super::services::ServiceName;
use crate::web::state::AppState;
use crate::{AppError, AppResult};
use domain::jobs::executor::EventBody;
use domain::jobs::logs::LogView;
use domain::jobs::{self, Handover, JobState, Trigger, events};
use model::Timestamp;

/// What names the limit of invocation bodies.
const PAYLOAD_LIMIT: &str = "OSCAR_MAX_PAYLOAD_BYTES";

/// Jobs per page of `GET /system/logs/{service}` (OSCAR's `JOB_LISTING_LIMIT`).
const PAGE: i64 = 70;

pub fn routes(router: OpenApiRouter<AppState>, state: &AppState) -> OpenApiRouter<AppState> {
    let invoke = [routes!(job), routes!(run)]
        .into_iter()
        .fold(OpenApiRouter::new(), documented)
        // Bodies are read by the handlers once the caller is known, up to the payload limit.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::access_log::record,
        ));
    [
        routes!(super::access_log::list),
        routes!(store_event, store_reachable),
        routes!(list, remove_all),
        routes!(log, remove),
    ]
    .into_iter()
    .fold(router.merge(invoke), documented)
}

/// A job named in the path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct JobName {
    /// The service's name.
    name: String,
    /// The job's name.
    job: String,
}

/// What `POST /job` stored.
#[derive(Serialize, ToSchema)]
struct Enqueued {
    job_name: String,
    service: String,
    /// False when the same object version already had a job (the event was a repeat).
    created: bool,
}

/// Queues a job (asynchronous invocation). 201 once the job is stored; the body names it
/// (upstream sends none, clients ignore it). The body is a MinIO/S3 event or any payload
/// for the script; the service's token works as a bearer token.
#[utoipa::path(post, operation_id = "enqueue_job", path = "/job/{name}", tag = "jobs", params(ServiceName),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "A storage event, or the input for the script"),
    responses((status = 201, description = "Stored", body = Enqueued),
        (status = 413, description = "Larger than OSCAR_MAX_PAYLOAD_BYTES")))]
async fn job(
    State(state): State<AppState>,
    Client(client): Client,
    Path(ServiceName { name }): Path<ServiceName>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    let (caller, service) = invoker(&state, &headers, &client, &name).await?;
    let body = payload(body, state.jobs.settings().payload_limit).await?;
    let handover = Handover {
        job: header_text(&headers, "x-delegated-job-id")?,
        from: header_text(&headers, "x-delegated-from")?,
    };
    let enqueued =
        events::job_request(&state.db, &state.jobs, &caller, &service, body, handover).await?;
    let answer = Enqueued {
        job_name: enqueued.name,
        service: name,
        created: enqueued.created,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// A header's text, when it is sent and not empty.
fn header_text(headers: &HeaderMap, name: &'static str) -> AppResult<Option<String>> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| AppError::bad_request(name, "must be plain ASCII text"))?;
            Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty()))
        }
    }
}

/// An invocation body in memory (`/job` bodies are stored with their job anyway).
async fn payload(body: Body, limit: u64) -> AppResult<Vec<u8>> {
    let mut chunks = std::pin::pin!(limited(body, limit, PAYLOAD_LIMIT)?);
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.next().await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(bytes)
}

/// A `/run` body written to a file as it arrives, so that a large input never sits in the
/// server's memory; the file goes when the run is over (the local executor moves it).
struct Spooled(std::path::PathBuf);

impl Spooled {
    async fn receive(body: Body, dir: &std::path::Path, limit: u64) -> AppResult<Self> {
        let unwritable = |e: std::io::Error| AppError::internal("spool the /run body", e);
        tokio::fs::create_dir_all(dir).await.map_err(unwritable)?;
        let spooled = Self(dir.join(uuid::Uuid::new_v4().to_string()));
        let mut file = tokio::fs::File::create(&spooled.0)
            .await
            .map_err(unwritable)?;
        let mut chunks = std::pin::pin!(limited(body, limit, PAYLOAD_LIMIT)?);
        while let Some(chunk) = chunks.next().await {
            file.write_all(&chunk?).await.map_err(unwritable)?;
        }
        file.flush().await.map_err(unwritable)?;
        Ok(spooled)
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The jobs a store event started.
#[derive(Serialize, ToSchema)]
struct Routed {
    jobs: Vec<String>,
}

/// An external store's webhook (MinIO / RustFS target, configured once; see README): each
/// object-created record goes to every service whose input folder it falls in. Takes
/// `Authorization: Bearer <OSCAR_WEBHOOK_TOKEN>`.
#[utoipa::path(post, path = "/system/store-events", tag = "jobs", security(("bearer" = [])),
    request_body(content = serde_json::Value, description = "A MinIO/S3 event (`Records`)"),
    responses((status = 200, description = "The jobs it started", body = Routed)))]
async fn store_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Json<Routed>> {
    let Some(token) = &state.s3.webhook_token else {
        return Err(AppError::NotFound(
            "store notifications are not configured on this server (OSCAR_WEBHOOK_TOKEN)".into(),
        ));
    };
    require_bearer(&headers, token)?;
    let body = payload(body, state.jobs.settings().payload_limit).await?;
    let text = String::from_utf8(body)
        .map_err(|_| AppError::bad_request("body", "must be a JSON storage event"))?;
    let model::function::event::Event::Storage(event) =
        model::function::event::Event::parse(text.as_bytes())
    else {
        return Err(AppError::bad_request(
            "body",
            "is not an S3/MinIO storage event (expected Records[0].eventSource minio:s3 or aws:s3)",
        ));
    };
    state.s3.changed(&event.bucket);
    if !event.is_created() {
        return Ok(Json(Routed { jobs: Vec::new() }));
    }
    let enqueued = events::object_created(
        &state.db,
        &state.services,
        &state.jobs,
        &event,
        &text,
        Trigger::Bucket,
        None,
    )
    .await?;
    let jobs = enqueued.into_iter().map(|e| e.name).collect();
    Ok(Json(Routed { jobs }))
}

/// The store's reachability check of its webhook target.
#[utoipa::path(get, path = "/system/store-events", tag = "jobs", security(()),
    responses((status = 200, description = "Reachable")))]
async fn store_reachable() {}

/// Runs at once and answers with the job's response (oscar-api.md §6.4): 500 with the reason
/// when the job failed, 504 when it ran out of time. The service's token works as a bearer
/// token.
#[utoipa::path(post, operation_id = "run_service", path = "/run/{name}", tag = "jobs", params(ServiceName),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The input for the script"),
    responses(
        (status = 200, description = "The output: one file base64-encoded, several zipped then \
            base64-encoded, none: what the script printed", body = String, content_type = "text/plain"),
        (status = 413, description = "Larger than OSCAR_MAX_PAYLOAD_BYTES"),
        (status = 429, description = "The caller's quota is in use"),
        (status = 500, description = "The job failed: its name and reason", body = String, content_type = "text/plain"),
        (status = 504, description = "The job ran out of time", body = String, content_type = "text/plain")))]
async fn run(
    State(state): State<AppState>,
    Client(client): Client,
    Path(ServiceName { name }): Path<ServiceName>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    let (caller, _) = invoker(&state, &headers, &client, &name).await?;
    let settings = state.jobs.settings();
    let spooled = Spooled::receive(body, &settings.spool, settings.payload_limit).await?;
    let payload = EventBody::File(spooled.0.clone());
    let (job, response) = jobs::run_sync(&state.db, &state.jobs, &caller, &name, payload).await?;
    drop(spooled);
    if job.state == JobState::Succeeded {
        return Ok((StatusCode::OK, response).into_response());
    }
    let ran = job
        .finished_at
        .unwrap_or_default()
        .since(job.started_at.unwrap_or_default());
    let timed_out = ran >= state.jobs.settings().sync_timeout;
    let status = if timed_out {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let reason = job.reason.unwrap_or_else(|| "the job failed".into());
    Ok((
        status,
        format!(
            "job {} failed: {reason}; its log: GET /system/logs/{name}/{}\n",
            job.name, job.name
        ),
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// `next_page` of the page before.
    page: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct JobTimes {
    /// OSCAR's status: Pending, Running, Succeeded or Failed.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    creation_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_time: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct JobPage {
    jobs: BTreeMap<String, JobTimes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining_jobs: Option<i64>,
}

/// The service's jobs, newest first, 70 per page; the next page starts after the last job of
/// this one.
#[utoipa::path(get, operation_id = "list_jobs", path = "/system/logs/{name}", tag = "jobs", params(ServiceName, PageQuery),
    responses((status = 200, description = "A page of jobs by name", body = JobPage)))]
async fn list(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name: service }): Path<ServiceName>,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<JobPage>> {
    let scope = jobs::authorize(&state.db, &caller, &service).await?;
    let after = query.page.filter(|p| !p.is_empty());
    let filter = jobs::JobFilter {
        service: Some(&service),
        owner: scope.owner(),
        after: after.as_deref(),
        ..jobs::JobFilter::default()
    };
    let (found, next_page) = jobs::find(&state.db, &filter, PAGE).await?;
    let total: i64 = jobs::counts(&state.db, Some(&service), scope.owner())
        .await?
        .iter()
        .map(|(_, n)| n)
        .sum();
    let remaining = next_page.as_ref().map(|_| {
        // Jobs after this page: an estimate when jobs arrive meanwhile, as upstream's.
        (total - found.len() as i64).max(0)
    });
    let jobs = found
        .into_iter()
        .map(|j| {
            let times = JobTimes {
                status: j.state.oscar_status(),
                creation_time: Some(j.created_at.rfc3339()),
                start_time: j.started_at.map(Timestamp::rfc3339),
                finish_time: j.finished_at.map(Timestamp::rfc3339),
            };
            (j.name, times)
        })
        .collect();
    Ok(Json(JobPage {
        jobs,
        next_page,
        remaining_jobs: remaining,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LogQuery {
    /// Keep each line's time.
    timestamps: Option<bool>,
}

/// A job's log.
#[utoipa::path(get, operation_id = "read_job_log", path = "/system/logs/{name}/{job}", tag = "jobs", params(JobName, LogQuery),
    responses((status = 200, description = "The log", body = String, content_type = "text/plain")))]
async fn log(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(JobName { name: service, job }): Path<JobName>,
    Query(query): Query<LogQuery>,
) -> AppResult<String> {
    jobs::log_for(
        &state.db,
        &caller,
        &service,
        &job,
        if query.timestamps.unwrap_or(false) {
            LogView::Timestamped
        } else {
            LogView::Text
        },
    )
    .await
}

/// Deletes a finished job and its log.
#[utoipa::path(delete, operation_id = "delete_job", path = "/system/logs/{name}/{job}", tag = "jobs", params(JobName),
    responses((status = 204, description = "Deleted"),
        (status = 409, description = "The job is running", body = String, content_type = "text/plain")))]
async fn remove(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(JobName { name: service, job }): Path<JobName>,
) -> AppResult<StatusCode> {
    let found = jobs::require(&state.db, &caller, &service, &job).await?;
    if found.state == JobState::Running {
        return Err(AppError::Conflict(format!(
            "job {job:?} is running; delete it once it has finished"
        )));
    }
    jobs::delete_named(&state.db, &state.jobs, &caller, &service, &[job]).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AllQuery {
    /// Every job that is not running, not only the succeeded ones.
    all: Option<bool>,
}

/// Deletes the service's finished jobs: without `all`, only succeeded ones.
#[utoipa::path(delete, operation_id = "delete_jobs", path = "/system/logs/{name}", tag = "jobs", params(ServiceName, AllQuery),
    responses((status = 204, description = "Deleted")))]
async fn remove_all(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name: service }): Path<ServiceName>,
    Query(query): Query<AllQuery>,
) -> AppResult<StatusCode> {
    jobs::delete_finished(
        &state.db,
        &state.jobs,
        &caller,
        &service,
        query.all.unwrap_or(false),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
