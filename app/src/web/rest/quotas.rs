//! `/system/quotas…`: per-user quotas and their use (`domain::quotas`), in upstream's shapes,
//! plus the defaults everyone gets.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Principal;
use super::openapi::documented;
use crate::AppResult;
use crate::web::state::AppState;
use domain::quotas::{self, Limits, Update};
use model::AppError;
use model::quotas::QuotaReport;

pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    [
        routes!(own),
        routes!(read, update),
        routes!(defaults, update_defaults),
    ]
    .into_iter()
    .fold(router, documented)
}

/// A user named in the path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct UserId {
    /// The user's id (the OIDC `sub`, `cluster_admin` for the admin).
    user: String,
}

/// How a change of limits reads, for the document (the parser is `quotas::Update::parse`).
const LIMITS_BODY: &str = "Upstream's `{cpu, memory}` (quantities: `2`, `500m`, `4Gi`), \
    `minio.buckets`, plus `jobs` and `minio.storage_total`; strings or numbers. `\"\"` or \
    absent leaves a value, `\"unlimited\"` or -1 lifts it, `\"default\"` returns to the default.";

fn parse(body: &Bytes) -> AppResult<Update> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request("body", format!("not valid JSON: {e}")))?;
    Update::parse(&value)
}

/// The caller's quota and what they use of it (oscar-python's `get_own_quota`).
#[utoipa::path(get, operation_id = "read_own_quota", path = "/system/quotas/user", tag = "usage",
    responses((status = 200, description = "Limits and use; -1 is unlimited", body = QuotaReport)))]
async fn own(
    State(state): State<AppState>,
    Principal(caller): Principal,
) -> AppResult<Json<QuotaReport>> {
    let id = caller.id.clone();
    Ok(Json(
        quotas::report(&state.db, &state.s3.client, &caller, &id).await?,
    ))
}

/// A user's quota (the admin, or the user).
#[utoipa::path(get, operation_id = "read_user_quota", path = "/system/quotas/user/{user}", tag = "usage", params(UserId),
    responses((status = 200, description = "Limits and use; -1 is unlimited", body = QuotaReport)))]
async fn read(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(UserId { user }): Path<UserId>,
) -> AppResult<Json<QuotaReport>> {
    Ok(Json(
        quotas::report(&state.db, &state.s3.client, &caller, &user).await?,
    ))
}

/// The admin changes a user's limits (oscar-python's `update_user_quota`); answers the user's
/// quota as it now is.
#[utoipa::path(put, operation_id = "update_user_quota", path = "/system/quotas/user/{user}", tag = "usage", params(UserId),
    request_body(content = serde_json::Value, description = LIMITS_BODY),
    responses((status = 200, description = "The quota as it now is", body = QuotaReport)))]
async fn update(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(UserId { user }): Path<UserId>,
    body: Bytes,
) -> AppResult<Json<QuotaReport>> {
    quotas::update_user(&state.db, &caller, &user, &parse(&body)?).await?;
    Ok(Json(
        quotas::report(&state.db, &state.s3.client, &caller, user.trim()).await?,
    ))
}

/// What users without their own limits get (`null`: unlimited).
#[utoipa::path(get, operation_id = "read_quota_defaults", path = "/system/quotas/defaults", tag = "usage",
    responses((status = 200, description = "The default limits", body = Limits)))]
async fn defaults(
    State(state): State<AppState>,
    Principal(_): Principal,
) -> AppResult<Json<Limits>> {
    Ok(Json(quotas::defaults(&state.db).await?))
}

/// The admin changes the defaults; answers them as they now are.
#[utoipa::path(put, operation_id = "update_quota_defaults", path = "/system/quotas/defaults", tag = "usage",
    request_body(content = serde_json::Value, description = LIMITS_BODY),
    responses((status = 200, description = "The default limits", body = Limits)))]
async fn update_defaults(
    State(state): State<AppState>,
    Principal(caller): Principal,
    body: Bytes,
) -> AppResult<Json<Limits>> {
    Ok(Json(
        quotas::update_defaults(&state.db, &caller, &parse(&body)?).await?,
    ))
}
