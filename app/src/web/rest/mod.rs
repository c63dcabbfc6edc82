//! The OSCAR-compatible REST API (`/system/*`), for oscar-python, oscar-cli and scripts.
//! Handlers are thin like server functions: authenticate, call `domain::*`, answer with
//! OSCAR's status codes. Errors are plain text, as OSCAR answers.

mod access_log;
mod auth;
pub mod body;
mod buckets;
mod config;
pub mod exposed;
mod federation;
mod jobs;
mod metrics;
pub mod openapi;
mod quotas;
mod registries;
mod services;
mod usage;
mod volumes;

use axum::Router;

use crate::web::state::AppState;

pub use auth::Principal;

/// Every route of the API, and its OpenAPI document served beside it: routes are added only
/// through their documentation, so the two cannot drift apart.
pub fn router(state: &AppState) -> Router<AppState> {
    let documented = [
        config::routes,
        services::routes,
        buckets::routes,
        registries::routes,
        usage::routes,
        quotas::routes,
        metrics::routes,
        exposed::routes,
        volumes::routes,
        federation::routes,
    ]
    .into_iter()
    .fold(jobs::routes(openapi::routes(), state), |router, add| {
        add(router)
    });
    let (routes, document) = documented.split_for_parts();
    routes.merge(openapi::serve(document))
}
