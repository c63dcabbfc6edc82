//! `/system/volumes`: the caller's managed volumes (`domain::volumes`) in upstream's shapes
//! (oscar-python's `list_volumes`, `create_volume`, `get_volume`, `delete_volume`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Principal;
use super::openapi::documented;
use crate::AppResult;
use crate::web::state::AppState;
use domain::volumes;
use model::AppError;
use model::volumes::{NewVolume, Volume};

pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    [routes!(list, create), routes!(read, delete)]
        .into_iter()
        .fold(router, documented)
}

/// A volume named in the path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct VolumeName {
    /// The volume's name, one of the caller's.
    name: String,
}

/// The caller's volumes, with the services using each.
#[utoipa::path(get, operation_id = "list_volumes", path = "/system/volumes", tag = "volumes",
    responses((status = 200, description = "The caller's volumes", body = Vec<Volume>)))]
async fn list(
    State(state): State<AppState>,
    Principal(caller): Principal,
) -> AppResult<Json<Vec<Volume>>> {
    let executor = state.jobs.executor();
    Ok(Json(
        volumes::list(&state.db, &state.services, executor.as_ref(), &caller).await?,
    ))
}

/// Makes a volume, kept until deleted (`creation_mode: api`, `lifecycle_policy: retain`).
#[utoipa::path(post, operation_id = "create_volume", path = "/system/volumes", tag = "volumes",
    request_body = NewVolume,
    responses((status = 201, description = "Made", body = Volume),
        (status = 409, description = "The caller has a volume of that name")))]
async fn create(
    State(state): State<AppState>,
    Principal(caller): Principal,
    body: Bytes,
) -> AppResult<(StatusCode, Json<Volume>)> {
    let new: NewVolume = serde_json::from_slice(&body).map_err(|e| {
        AppError::bad_request("body", format!("must be {{name, size}} as JSON: {e}"))
    })?;
    let executor = state.jobs.executor();
    let made = volumes::create(&state.db, &state.services, executor.as_ref(), &caller, new).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// One of the caller's volumes.
#[utoipa::path(get, operation_id = "read_volume", path = "/system/volumes/{name}", tag = "volumes",
    params(VolumeName), responses((status = 200, description = "The volume", body = Volume)))]
async fn read(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(VolumeName { name }): Path<VolumeName>,
) -> AppResult<Json<Volume>> {
    let executor = state.jobs.executor();
    Ok(Json(
        volumes::get(
            &state.db,
            &state.services,
            executor.as_ref(),
            &caller,
            &name,
        )
        .await?,
    ))
}

/// Deletes a volume and what it holds; 400 while a service uses it.
#[utoipa::path(delete, operation_id = "delete_volume", path = "/system/volumes/{name}", tag = "volumes",
    params(VolumeName), responses((status = 204, description = "Deleted")))]
async fn delete(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(VolumeName { name }): Path<VolumeName>,
) -> AppResult<StatusCode> {
    let executor = state.jobs.executor();
    volumes::delete(
        &state.db,
        &state.services,
        executor.as_ref(),
        &caller,
        &name,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
