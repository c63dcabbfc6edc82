//! `GET /metrics`: the platform's Prometheus metrics (`domain::metrics`), for a scraper with
//! `OSCAR_METRICS_TOKEN` as its bearer token, or the admin.

use axum::extract::{FromRequestParts, State};
use axum::http::{Request, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, body::Body};
use subtle::ConstantTimeEq;

use super::Principal;
use crate::web::state::AppState;
use crate::{AppError, AppResult};

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// The content type of Prometheus's text format, version 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

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
