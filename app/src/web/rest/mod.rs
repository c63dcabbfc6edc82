//! The OSCAR-compatible REST API (`/system/*`), for oscar-python, oscar-cli and scripts.
//! Handlers are thin like server functions: authenticate, call `domain::*`, answer with
//! OSCAR's status codes. Errors are plain text, as OSCAR answers.

mod access_log;
mod auth;
pub mod body;
mod buckets;
mod config;
mod jobs;
mod metrics;
mod quotas;
mod registries;
mod services;
mod usage;

use axum::Router;

use crate::web::state::AppState;

pub use auth::Principal;

pub fn router(state: &AppState) -> Router<AppState> {
    services::routes()
        .merge(jobs::routes(state))
        .merge(buckets::routes())
        .merge(config::routes())
        .merge(registries::routes())
        .merge(usage::routes())
        .merge(quotas::routes())
        .merge(metrics::routes())
}
