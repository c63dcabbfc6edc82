//! `GET /metrics`: the platform's Prometheus metrics (`domain::metrics`), for a scraper with
//! `OSCAR_METRICS_TOKEN` as its bearer token, or the admin.

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::{Request, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Principal;
use crate::web::state::AppState;
use crate::{AppError, AppResult};

pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router.routes(routes!(metrics))
}

/// The content type of Prometheus's text format, version 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The platform's metrics in Prometheus's text format, for the admin or a scraper with
/// `OSCAR_METRICS_TOKEN` as its bearer token.
#[utoipa::path(get, operation_id = "prometheus_metrics", path = "/metrics", tag = "usage",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String,
        content_type = "text/plain; version=0.0.4")))]
async fn metrics(State(state): State<AppState>, request: Request<Body>) -> Response {
    let (mut parts, _) = request.into_parts();
    let scraper = state.jobs.metrics().token().is_some_and(|token| {
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())))
    });
    if !scraper {
        match Principal::from_request_parts(&mut parts, &state).await {
            Ok(Principal(caller)) if caller.admin => {}
            Ok(_) => {
                return AppError::Forbidden(
                    "metrics are for the admin and for scrapers with OSCAR_METRICS_TOKEN".into(),
                )
                .into_response();
            }
            Err(refused) => return refused,
        }
    }
    let rendered: AppResult<String> = state.jobs.metrics().render(&state.db).await;
    match rendered {
        Ok(text) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response(),
        Err(err) => err.into_response(),
    }
}
