//! What a server function needs from the request it serves: the state, the session, the
//! signed-in user, and a way to answer an error with its own HTTP status.

use leptos::prelude::expect_context;
use tower_sessions::Session;

use super::state::AppState;
use crate::api::auth::SessionUser;
use crate::{AppError, AppResult};

pub fn state() -> AppState {
    expect_context::<AppState>()
}

pub async fn session() -> AppResult<Session> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|e| AppError::internal("session layer missing", e))
}

/// The signed-in user, or 401.
pub async fn require_user() -> AppResult<SessionUser> {
    super::auth::current_user(&session().await?).await?.ok_or_else(AppError::unauthorized)
}

/// Sets the response status from the error (server functions answer 500 for any error by
/// default) and hands the result back unchanged.
pub fn reply<T>(result: AppResult<T>) -> AppResult<T> {
    if let Err(err) = &result {
        if let Some(options) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            let status = http::StatusCode::from_u16(err.status())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            options.set_status(status);
        }
    }
    result
}
