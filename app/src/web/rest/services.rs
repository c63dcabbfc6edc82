//! `/system/services`: OSCAR's service CRUD (oscar-api.md §3.2).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Principal;
use super::openapi::documented;
use crate::web::state::AppState;
use crate::{AppError, AppResult};
use domain::federation::members;
use domain::jobs::deployment;
use domain::services;
use model::Timestamp;
use model::service::Service;
use model::services::{DeploymentLogs, DeploymentStatus, DeploymentSummary};
use serde::{Deserialize, Serialize};

pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    [
        routes!(list, create, update),
        routes!(read, remove),
        routes!(deployment_status),
        routes!(deployment_logs),
    ]
    .into_iter()
    .fold(router, documented)
}

/// A service named in the path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct ServiceName {
    /// The service's name.
    pub name: String,
}

/// `?include=deployment` adds each service's deployment summary, as upstream.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Include {
    /// `deployment` adds each service's deployment summary.
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
#[derive(Serialize, ToSchema)]
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
        Some(deployment::summary(&state.db, &state.jobs, &state.exposed, caller, &service).await?)
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

/// Creates a service (oscar-python's `create_service`, oscar-cli's `apply`).
#[utoipa::path(post, operation_id = "create_service", path = "/system/services", tag = "services", request_body = Service,
    responses((status = 201, description = "Created: its buckets exist and it is ready to run jobs; a federated service's answer says what each member cluster did")))]
async fn create(
    State(state): State<AppState>,
    Principal(caller): Principal,
    body: Bytes,
) -> AppResult<Response> {
    let created = services::create(
        &state.db,
        &state.s3,
        state.jobs.executor().as_ref(),
        &caller,
        state.vo_groups(),
        parse(&body)?,
        Timestamp::now(),
    )
    .await?;
    // Upstream answers 201 with no body; a federated service says what its members did.
    let copies = members::propagate(&state.federation(), &created).await?;
    if copies.is_empty() {
        Ok(StatusCode::CREATED.into_response())
    } else {
        Ok((StatusCode::CREATED, Json(json!({"federation": copies}))).into_response())
    }
}

/// Replaces a service; the body's `name` selects it, its token and owner are kept.
#[utoipa::path(put, operation_id = "update_service", path = "/system/services", tag = "services", request_body = Service,
    responses((status = 204, description = "Updated"),
        (status = 200, description = "Updated, but some federation members could not take the new definition (named in the text)", body = String)))]
async fn update(
    State(state): State<AppState>,
    Principal(caller): Principal,
    body: Bytes,
) -> AppResult<Response> {
    let saved = services::update(
        &state.db,
        &state.s3,
        state.jobs.executor().as_ref(),
        &caller,
        state.vo_groups(),
        parse(&body)?,
        Timestamp::now(),
    )
    .await?;
    // Upstream's answer when a member could not take the new definition.
    let failed: Vec<String> = members::propagate(&state.federation(), &saved)
        .await?
        .into_iter()
        .filter(|copy| !copy.ok)
        .map(|copy| copy.to_string())
        .collect();
    if failed.is_empty() {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        let text = format!("Updated with federation warnings: {}", failed.join("; "));
        Ok((StatusCode::OK, text).into_response())
    }
}

/// The services the caller may see; lists never carry tokens (upstream sends them to anyone
/// who can list).
#[utoipa::path(get, operation_id = "list_services", path = "/system/services", tag = "services", params(Include),
    responses((status = 200, description = "The services", body = Vec<Shown>)))]
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

/// One service; the token is returned to the owner and the admin only (oscar-python reads it
/// to invoke).
#[utoipa::path(get, operation_id = "read_service", path = "/system/services/{name}", tag = "services", params(ServiceName, Include),
    responses((status = 200, description = "The service", body = Shown)))]
async fn read(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name }): Path<ServiceName>,
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

/// Whether the service can run jobs now (upstream's `ServiceDeploymentStatus`).
#[utoipa::path(get, path = "/system/services/{name}/deployment", tag = "services", params(ServiceName),
    responses((status = 200, description = "The service's state", body = DeploymentStatus)))]
async fn deployment_status(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name }): Path<ServiceName>,
) -> AppResult<Json<DeploymentStatus>> {
    Ok(Json(
        deployment::status(&state.db, &state.jobs, &state.exposed, &caller, &name).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct LogsQuery {
    /// `true` puts each line's time in `timestamp`.
    timestamps: Option<String>,
    /// How many of the last lines (default 200, at most 1,000).
    tail_lines: Option<String>,
}

/// The latest run's log. Lenient like upstream: an unreadable `tailLines` means the default,
/// more than 1,000 means 1,000.
#[utoipa::path(get, path = "/system/services/{name}/deployment/logs", tag = "services",
    params(ServiceName, LogsQuery),
    responses((status = 200, description = "The log's last lines", body = DeploymentLogs)))]
async fn deployment_logs(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name }): Path<ServiceName>,
    Query(query): Query<LogsQuery>,
) -> AppResult<Json<DeploymentLogs>> {
    let tail = query
        .tail_lines
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n >= 1)
        .map_or(deployment::TAIL_LINES, |n| n.min(1000));
    let timestamps = query.timestamps.is_some_and(|t| t == "true" || t == "1");
    Ok(Json(
        deployment::logs(&state.db, &state.exposed, &caller, &name, timestamps, tail).await?,
    ))
}

/// Deletes a service and the buckets it created that no other service uses.
#[utoipa::path(delete, operation_id = "delete_service", path = "/system/services/{name}", tag = "services", params(ServiceName),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name }): Path<ServiceName>,
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
