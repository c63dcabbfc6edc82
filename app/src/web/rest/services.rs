//! `/system/services`: OSCAR's service CRUD (oscar-api.md §3.2).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use super::Principal;
use crate::web::state::AppState;
use crate::{AppError, AppResult};
use domain::services;
use model::Timestamp;
use model::service::Service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/system/services", get(list).post(create).put(update))
        .route("/system/services/", get(list).post(create).put(update))
        .route("/system/services/{name}", get(read).delete(remove))
        .route("/system/services/{name}/", get(read).delete(remove))
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
) -> AppResult<Json<Vec<Service>>> {
    let mut all = services::list_visible(&state.db, &state.services, &caller).await?;
    for service in &mut all {
        service.token.clear();
    }
    Ok(Json(all))
}

/// The token is returned to the owner and the admin only (oscar-python reads it to invoke).
async fn read(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(name): Path<String>,
) -> AppResult<Json<Service>> {
    let mut service = services::require_visible(&state.db, &caller, &name).await?;
    if services::authorize_owner(&caller, &service).is_err() {
        service.token.clear();
    }
    // oscar-python's storage client reads this key unconditionally; upstream always has it.
    service
        .inactive
        .entry("storage_providers".into())
        .or_insert_with(|| serde_json::json!({}));
    Ok(Json(service))
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
