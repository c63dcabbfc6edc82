//! The HTTP surface: pages and server functions (leptos), health, static files, and the layers
//! around them (sign-in guard, sessions, request tracing).

use app::server::sessions::Sessions;
use app::server::state::AppState;
use app::{App, shell};
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};
use tracing::Level;

/// Sessions end after this long without a request.
const SESSION_IDLE: time::Duration = time::Duration::hours(12);

pub fn router(state: AppState, sessions: Sessions, secure_cookies: bool) -> axum::Router {
    let sessions = SessionManagerLayer::new(sessions)
        .with_name("oscar_session")
        // Lax, not Strict: the session must survive the redirect back from an identity provider.
        .with_same_site(SameSite::Lax)
        .with_http_only(true)
        .with_secure(secure_cookies)
        .with_expiry(Expiry::OnInactivity(SESSION_IDLE));

    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    axum::Router::new()
        // OSCAR-compatible liveness probe.
        .route("/health", get(|| async { "Ok" }))
        .route("/", get(|| async { Redirect::to(app::pages::HOME) }))
        .merge(app::rest::router(&state))
        .merge(app::server::live::routes())
        .merge(app::server::sign_in::routes())
        .merge(app::server::transfers::routes())
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Layers added later wrap the earlier ones: trace ⊃ sessions ⊃ sign-in guard ⊃ routes.
        .layer(middleware::from_fn(require_sign_in))
        .layer(sessions)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

/// Paths anyone may request. Server functions and the REST API check the caller themselves
/// (the login function must be reachable signed out); static files carry no data.
fn is_public(path: &str) -> bool {
    matches!(path, "/health" | "/favicon.svg" | app::pages::LOGIN)
        || path.starts_with("/api/")
        || path.starts_with("/auth/")
        || path.starts_with("/system/")
        || path.starts_with("/job/")
        || path.starts_with("/run/")
        || path.starts_with("/pkg/")
}

/// Signed-out visitors of a page go to the login page and come back after signing in.
async fn require_sign_in(session: Session, request: Request, next: Next) -> Response {
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    match app::server::auth::current_user(&session).await {
        Ok(Some(_)) => next.run(request).await,
        Ok(None)
            if request.method() == http::Method::GET || request.method() == http::Method::HEAD =>
        {
            let back = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let target = format!(
                "{}?next={}",
                app::pages::LOGIN,
                app::url::percent_encode(back, b"/")
            );
            Redirect::to(&target).into_response()
        }
        Ok(None) => app::AppError::unauthorized().into_response(),
        Err(err) => err.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_login_health_assets_and_server_functions_are_public() {
        for path in [
            "/health",
            "/login",
            "/favicon.svg",
            "/pkg/oscar.wasm",
            "/api/auth/login",
            "/job/grayify",
            "/run/grayify",
        ] {
            assert!(is_public(path), "{path}");
        }
        for path in [
            "/",
            "/services",
            "/info",
            "/login2",
            "/pkgs",
            "/apiary",
            "/systemd",
            "/jobs",
        ] {
            assert!(!is_public(path), "{path}");
        }
    }
}
