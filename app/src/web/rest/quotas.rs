//! `/system/quotas…`: per-user quotas and their use (`domain::quotas`), in upstream's shapes,
//! plus the defaults everyone gets.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::Principal;
use crate::AppResult;
use crate::web::state::AppState;
use domain::quotas::{self, Limits, Update};
use model::AppError;
use model::quotas::QuotaReport;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/system/quotas/user", get(own))
        .route("/system/quotas/user/", get(own))
        .route("/system/quotas/user/{user}", get(read).put(update))
        .route(
            "/system/quotas/defaults",
            get(defaults).put(update_defaults),
        )
}

fn parse(body: &Bytes) -> AppResult<Update> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request("body", format!("not valid JSON: {e}")))?;
    Update::parse(&value)
}

async fn own(
    State(state): State<AppState>,
    Principal(caller): Principal,
) -> AppResult<Json<QuotaReport>> {
    let id = caller.id.clone();
    Ok(Json(
        quotas::report(&state.db, &state.s3.client, &caller, &id).await?,
    ))
}

async fn read(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(user): Path<String>,
) -> AppResult<Json<QuotaReport>> {
    Ok(Json(
        quotas::report(&state.db, &state.s3.client, &caller, &user).await?,
    ))
}

/// The admin changes a user's limits; answers the user's quota as it now is.
async fn update(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(user): Path<String>,
    body: Bytes,
) -> AppResult<Json<QuotaReport>> {
    quotas::update_user(&state.db, &caller, &user, &parse(&body)?).await?;
    Ok(Json(
        quotas::report(&state.db, &state.s3.client, &caller, user.trim()).await?,
    ))
}

async fn defaults(
    State(state): State<AppState>,
    Principal(_): Principal,
) -> AppResult<Json<Limits>> {
    Ok(Json(quotas::defaults(&state.db).await?))
}

async fn update_defaults(
    State(state): State<AppState>,
    Principal(caller): Principal,
    body: Bytes,
) -> AppResult<Json<Limits>> {
    Ok(Json(
        quotas::update_defaults(&state.db, &caller, &parse(&body)?).await?,
    ))
}
