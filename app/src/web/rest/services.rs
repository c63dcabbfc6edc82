//! `/system/services`: OSCAR's service CRUD (oscar-api.md §3.2).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use super::Principal;
use crate::web::state::AppState;
use crate::{AppError, AppResult};
use domain::jobs::deployment;
use domain::services;
use model::Timestamp;
use model::service::Service;
use model::services::{DeploymentLogs, DeploymentStatus, DeploymentSummary};
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/system/services", get(list).post(create).put(update))
        .route("/system/services/", get(list).post(create).put(update))
        .route("/system/services/{name}", get(read).delete(remove))
        .route("/system/services/{name}/", get(read).delete(remove))
        .route("/system/services/{name}/deployment", get(deployment_status))
        .route(
            "/system/services/{name}/deployment/logs",
            get(deployment_logs),
        )
}

/// `?include=deployment` adds each service's deployment summary, as upstream.
#[derive(Deserialize)]
struct Include {
    include: Option<String>,
}

impl Include {
    fn deployment(&self) -> bool {
        self.include
            .as_deref()
            .is_some_and(|i| i.split(',').any(|part| part.trim() == "deployment"))
    }
}

/// A service as the API returns it, with its deployment when asked for.
#[derive(Serialize)]
struct Shown {
    #[serde(flatten)]
    service: Service,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment: Option<DeploymentSummary>,
}

async fn shown(
    state: &AppState,
    caller: &domain::access::Caller,
    service: Service,
    include: &Include,
) -> AppResult<Shown> {
    let deployment = if include.deployment() {
        Some(deployment::summary(&state.db, &state.jobs, caller, &service).await?)
    } else {
        None
    };
    Ok(Shown {
        service,
        deployment,
    })
}

/// OSCAR reads bodies as JSON whatever the Content-Type (old clients sent none).
fn parse(body: &Bytes) -> AppResult<Service> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request("body", format!("not valid JSON: {e}")))?;
    Service::from_json(value).map_err(|e| AppError::bad_request("body", e))
}

async fn create(
    State(state): State<AppState>,
    Principal(caller): Principal,
    body: Bytes,
) -> AppResult<StatusCode> {
    services::create(
        &state.db,
        &state.s3,
        state.jobs.executor().as_ref(),
        &caller,
        state.vo_groups(),
        parse(&body)?,
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::CREATED)
}

async fn update(
    State(state): State<AppState>,
    Principal(caller): Principal,
    body: Bytes,
) -> AppResult<StatusCode> {
    services::update(
        &state.db,
        &state.s3,
        state.jobs.executor().as_ref(),
        &caller,
        state.vo_groups(),
        parse(&body)?,
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The services the caller may see; lists never carry tokens (upstream sends them to anyone
/// who can list).
async fn list(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Query(include): Query<Include>,
) -> AppResult<Json<Vec<Shown>>> {
    let all = services::list_visible(&state.db, &state.services, &caller).await?;
    let mut answer = Vec::with_capacity(all.len());
    for mut service in all {
        service.token.clear();
        answer.push(shown(&state, &caller, service, &include).await?);
    }
    Ok(Json(answer))
}

/// The token is returned to the owner and the admin only (oscar-python reads it to invoke).
async fn read(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(name): Path<String>,
    Query(include): Query<Include>,
) -> AppResult<Json<Shown>> {
    let mut service = services::require_visible(&state.db, &caller, &name).await?;
    if services::authorize_owner(&caller, &service).is_err() {
        service.token.clear();
    }
    // oscar-python's storage client reads this key unconditionally; upstream always has it.
    service
        .inactive
        .entry("storage_providers".into())
        .or_insert_with(|| serde_json::json!({}));
    Ok(Json(shown(&state, &caller, service, &include).await?))
}

async fn deployment_status(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(name): Path<String>,
) -> AppResult<Json<DeploymentStatus>> {
    Ok(Json(
        deployment::status(&state.db, &state.jobs, &caller, &name).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogsQuery {
    timestamps: Option<String>,
    tail_lines: Option<String>,
}

/// Lenient like upstream: an unreadable `tailLines` means the default, more than 1,000 means
/// 1,000.
async fn deployment_logs(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(name): Path<String>,
    Query(query): Query<LogsQuery>,
) -> AppResult<Json<DeploymentLogs>> {
    let tail = query
        .tail_lines
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n >= 1)
        .map_or(deployment::TAIL_LINES, |n| n.min(1000));
    let timestamps = query.timestamps.is_some_and(|t| t == "true" || t == "1");
    Ok(Json(
        deployment::logs(&state.db, &caller, &name, timestamps, tail).await?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(name): Path<String>,
) -> AppResult<StatusCode> {
    services::delete(
        &state.db,
        &state.services,
        &state.s3,
        state.jobs.executor().as_ref(),
        &caller,
        &name,
        false,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
