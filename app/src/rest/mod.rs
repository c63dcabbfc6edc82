//! The OSCAR-compatible REST API (`/system/*`), for oscar-python, oscar-cli and scripts.
//! Handlers are thin like server functions: authenticate, call `crate::server::*`, answer with
//! OSCAR's status codes. Errors are plain text, as OSCAR answers.

mod auth;
mod buckets;
mod jobs;
mod services;

use axum::Router;

use crate::server::state::AppState;

pub use auth::Principal;

pub fn router() -> Router<AppState> {
    services::routes()
        .merge(jobs::routes())
        .merge(buckets::routes())
}
