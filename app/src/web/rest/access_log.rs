//! Records every invocation in the access log and serves it (`GET /system/logs`).

use std::time::Instant;

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use domain::access_log::Entry;
use serde::Serialize;

use super::Principal;
use crate::web::state::AppState;
use model::AppResult;

/// Middleware on the invocation routes.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let headers = request.headers();
    let client_ip = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .unwrap_or_default()
        .trim()
        .to_string();
    // Who, without ever logging a credential.
    let user = match headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
    {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("basic") => "basic-auth".to_string(),
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("bearer") => "service-token".to_string(),
        _ => String::new(),
    };
    let response = next.run(request).await;
    state.access_log.push(Entry::new(
        method,
        path,
        client_ip,
        user,
        response.status().as_u16(),
        started.elapsed(),
    ));
    response
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Logs {
    logs: Vec<Entry>,
}

/// The latest 1,000 invocations of `/job` and `/run` (the admin only).
#[utoipa::path(get, operation_id = "list_invocations", path = "/system/logs", tag = "jobs",
    responses((status = 200, description = "Newest last", body = Logs)))]
pub async fn list(
    State(state): State<AppState>,
    Principal(caller): Principal,
) -> AppResult<Json<Logs>> {
    Ok(Json(Logs {
        logs: state.access_log.read(&caller)?,
    }))
}
