//! `/system/metrics…`: usage over a time window from the platform's job records
//! (`domain::usage`), in upstream's shapes.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::Principal;
use crate::AppResult;
use crate::web::state::AppState;
use domain::usage::{self, GroupBy, Window};
use model::{AppError, Timestamp};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/system/metrics", get(summary))
        .route("/system/metrics/", get(summary))
        .route("/system/metrics/breakdown", get(breakdown))
        .route("/system/metrics/{service}", get(service))
}

#[derive(Deserialize)]
struct WindowQuery {
    start: Option<String>,
    end: Option<String>,
}

impl WindowQuery {
    fn window(&self) -> AppResult<Window> {
        Window::parse(self.start.as_deref(), self.end.as_deref(), Timestamp::now())
    }
}

async fn summary(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Query(query): Query<WindowQuery>,
) -> AppResult<Response> {
    let summary = usage::summary(&state.db, &state.services, &caller, query.window()?).await?;
    Ok(Json(summary).into_response())
}

#[derive(Deserialize)]
struct BreakdownQuery {
    #[serde(flatten)]
    window: WindowQuery,
    group_by: Option<String>,
    include_users: Option<String>,
    format: Option<String>,
}

async fn breakdown(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Query(query): Query<BreakdownQuery>,
) -> AppResult<Response> {
    let group_by = GroupBy::parse(query.group_by.as_deref().unwrap_or(""))?;
    let include_users = query.include_users.as_deref() == Some("true");
    let csv = match query.format.as_deref().unwrap_or("json") {
        "json" => false,
        "csv" if include_users => {
            return Err(AppError::bad_request(
                "include_users",
                "is not supported with format=csv",
            ));
        }
        "csv" => true,
        other => {
            return Err(AppError::bad_request(
                "format",
                format!("{other:?} is not json or csv"),
            ));
        }
    };
    let breakdown = usage::breakdown(
        &state.db,
        &state.services,
        &caller,
        query.window.window()?,
        group_by,
        include_users,
    )
    .await?;
    Ok(if csv {
        (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            usage::breakdown_csv(&breakdown),
        )
            .into_response()
    } else {
        Json(breakdown).into_response()
    })
}

#[derive(Deserialize)]
struct ServiceQuery {
    #[serde(flatten)]
    window: WindowQuery,
    metric: Option<String>,
}

async fn service(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(name): Path<String>,
    Query(query): Query<ServiceQuery>,
) -> AppResult<Response> {
    let usage = usage::service(
        &state.db,
        &state.services,
        &caller,
        &name,
        query.window.window()?,
    )
    .await?;
    Ok(match query.metric.as_deref().map(str::trim) {
        Some(metric) if !metric.is_empty() => {
            Json(usage::one_metric(usage, metric)?).into_response()
        }
        _ => Json(usage).into_response(),
    })
}
