//! The browser's side of OIDC sign-in and of signing out: plain routes, because they redirect
//! to and from the identity provider. Failures land on the login page with a reason code
//! (never provider text, so a crafted link cannot put words on our page).

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

use super::state::AppState;
use crate::pages::LOGIN;
use domain::auth;
use model::Timestamp;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(start))
        .route(CALLBACK_PATH, get(callback))
        .route("/auth/logout", post(logout))
}

/// Where the provider sends the browser back (the path of `OIDC_REDIRECT_URL`).
pub const CALLBACK_PATH: &str = "/auth/callback";

#[derive(Deserialize)]
struct Start {
    next: Option<String>,
    /// Passed to the provider (which account to offer first).
    login_hint: Option<String>,
}

fn back_to_login(reason: &str) -> Response {
    Redirect::to(&format!("{LOGIN}?error={reason}")).into_response()
}

async fn start(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<Start>,
) -> Response {
    let Some(oidc) = &state.oidc else {
        return back_to_login("unconfigured");
    };
    let next = auth::safe_next(q.next.as_deref());
    match oidc
        .begin_login(&session, next, q.login_hint.as_deref(), Timestamp::now())
        .await
    {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(_) => back_to_login("unavailable"),
    }
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<Callback>,
) -> Response {
    let Some(oidc) = &state.oidc else {
        return back_to_login("unconfigured");
    };
    if let Some(error) = q.error {
        tracing::info!(error, description = ?q.error_description, "the identity provider refused a sign-in");
        return back_to_login("refused");
    }
    let (Some(code), Some(returned_state)) = (q.code, q.state) else {
        return back_to_login("failed");
    };
    let now = Timestamp::now();
    let signed_in = match oidc
        .finish_login(&session, &code, &returned_state, now)
        .await
    {
        Ok(signed_in) => signed_in,
        Err(crate::AppError::Unavailable(_)) => return back_to_login("unavailable"),
        Err(e) => {
            tracing::info!(error = %e, "sign-in failed");
            return back_to_login("failed");
        }
    };
    if oidc.admit(&signed_in.profile).is_err() {
        tracing::info!(subject = %signed_in.profile.subject, vos = ?signed_in.profile.vos, "sign-in refused: not in a required VO");
        return back_to_login("vo");
    }
    match auth::login_oidc(&state, &session, &signed_in, now).await {
        Ok(_) => Redirect::to(&signed_in.next).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Ends the session here and, after an OIDC sign-in, at the provider too.
async fn logout(State(state): State<AppState>, session: Session) -> Response {
    let id_token = match auth::logout(&session).await {
        Ok(token) => token,
        Err(e) => return e.into_response(),
    };
    if let (Some(oidc), Some(token)) = (&state.oidc, id_token)
        && let Some(url) = oidc.logout_url(Some(&token)).await
    {
        return Redirect::to(&url).into_response();
    }
    Redirect::to(LOGIN).into_response()
}
