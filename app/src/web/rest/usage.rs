//! `/system/metrics…`: usage over a time window from the platform's job records
//! (`domain::usage`), in upstream's shapes.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Principal;
use super::openapi::documented;
use super::services::ServiceName;
use crate::AppResult;
use crate::web::state::AppState;
use domain::usage::{self, GroupBy, Window};
use model::usage::{MetricValue, ServiceUsage, UsageBreakdown, UsageSummary};
use model::{AppError, Timestamp};

pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    [routes!(summary), routes!(breakdown), routes!(service)]
        .into_iter()
        .fold(router, documented)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WindowQuery {
    /// RFC 3339; default 24 hours before `end`.
    start: Option<String>,
    /// RFC 3339; default now.
    end: Option<String>,
}

impl WindowQuery {
    fn window(&self) -> AppResult<Window> {
        Window::parse(self.start.as_deref(), self.end.as_deref(), Timestamp::now())
    }
}

/// Usage over a time window (oscar-python's `get_metrics_summary`): the admin sees every run,
/// users the runs of services they manage and their own runs of shared ones.
#[utoipa::path(get, operation_id = "metrics_summary", path = "/system/metrics", tag = "usage", params(WindowQuery),
    responses((status = 200, description = "The totals", body = UsageSummary)))]
async fn summary(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Query(query): Query<WindowQuery>,
) -> AppResult<Json<UsageSummary>> {
    let summary = usage::summary(&state.db, &state.services, &caller, query.window()?).await?;
    Ok(Json(summary))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct BreakdownQuery {
    /// `service` (default), `user` or `country`.
    group_by: Option<String>,
    /// `true` lists each item's users (not with `format=csv`).
    include_users: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// The same figures by service, user or country.
#[utoipa::path(get, operation_id = "metrics_breakdown", path = "/system/metrics/breakdown", tag = "usage", params(WindowQuery, BreakdownQuery),
    responses((status = 200, description = "One item per group", content(
        (UsageBreakdown = "application/json"), (String = "text/csv")))))]
async fn breakdown(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Query(window): Query<WindowQuery>,
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
        window.window()?,
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ServiceQuery {
    /// Only this one: `cpu-hours`, `gpu-hours`, `requests-sync-per-service`,
    /// `requests-async-per-service`, `requests-exposed-per-service` or `users-per-service`.
    metric: Option<String>,
}

/// One service's figures (oscar-python's `get_service_metrics`).
#[utoipa::path(get, operation_id = "service_metrics", path = "/system/metrics/{name}", tag = "usage", params(ServiceName, WindowQuery, ServiceQuery),
    responses((status = 200, description = "Every metric, or the one asked for", body = ServiceAnswer)))]
async fn service(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name }): Path<ServiceName>,
    Query(window): Query<WindowQuery>,
    Query(query): Query<ServiceQuery>,
) -> AppResult<Json<ServiceAnswer>> {
    let usage =
        usage::service(&state.db, &state.services, &caller, &name, window.window()?).await?;
    Ok(Json(match query.metric.as_deref().map(str::trim) {
        Some(metric) if !metric.is_empty() => ServiceAnswer::One(usage::one_metric(usage, metric)?),
        _ => ServiceAnswer::All(usage),
    }))
}

/// Upstream answers `?metric=` with one value, else the service's every metric.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum ServiceAnswer {
    All(ServiceUsage),
    One(MetricValue),
}
