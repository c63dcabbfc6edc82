//! What a server function needs from the request it serves: the state, the session and the
//! signed-in user.

use leptos::prelude::{expect_context, use_context};
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

/// The client's address (the key of the sign-in throttle).
pub fn client_address() -> String {
    use_context::<http::request::Parts>()
        .map_or_else(|| "unknown".into(), |parts| state().client_address(&parts))
}

/// The signed-in user as the actor of domain functions (owner checks), or 401.
pub async fn require_caller() -> AppResult<domain::access::Caller> {
    domain::auth::signed_in(&session().await?).await
}

/// The signed-in user, or 401.
pub async fn require_user() -> AppResult<SessionUser> {
    domain::auth::current_user(&session().await?)
        .await?
        .ok_or_else(AppError::unauthorized)
}
