//! The HTTP surface: pages and server functions (leptos), health, static files, and the layers
//! around them (sign-in guard, sessions, request tracing).

use app::web::state::AppState;
use app::{App, shell};
use domain::sessions::Sessions;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderName, HeaderValue, header};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};
use tracing::Level;

/// Sessions end this long after they last changed (sign-in). The layer saves a session only
/// when it changes: moving the expiry on every request would write the database on every
/// request, and a save racing a logout would bring the session back.
const SESSION_LIFETIME: time::Duration = time::Duration::hours(12);

pub fn router(state: AppState, sessions: Sessions) -> axum::Router {
    let sessions = SessionManagerLayer::new(sessions)
        .with_name(app::web::rest::exposed::SESSION_COOKIE)
        // Lax, not Strict: the session must survive the redirect back from an identity provider.
        .with_same_site(SameSite::Lax)
        .with_http_only(true)
        .with_secure(state.secure_cookies)
        .with_expiry(Expiry::OnInactivity(SESSION_LIFETIME));

    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    axum::Router::new()
        .merge(app::web::rest::router(&state))
        .merge(app::web::rest::exposed::proxy_routes())
        .merge(app::web::live::routes())
        .merge(app::web::sign_in::routes())
        .merge(app::web::transfers::routes())
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Layers added later wrap the earlier ones:
        // trace ⊃ request metrics ⊃ web security ⊃ sessions ⊃ sign-in guard ⊃ server
        // function status ⊃ routes.
        .layer(middleware::from_fn(app::web::server_fn_status::set_status))
        .layer(middleware::from_fn_with_state(
            state.jobs.settings().payload_limit,
            require_sign_in,
        ))
        .layer(sessions)
        .layer(middleware::from_fn_with_state(
            Arc::new(content_security_policy(&state)),
            web_security,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), count_request))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

/// Counts each answered request in the platform's metrics under its route's pattern (never
/// the raw path: ids and keys would make a series each).
async fn count_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_string();
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state.jobs.metrics().http_request(
        &route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// What pages may load: our own code (Leptos hydrates with inline scripts and wasm),
/// previews and downloads from the object store, and form posts that continue at the
/// identity provider (logout).
fn content_security_policy(state: &AppState) -> HeaderValue {
    let store = origin_of(&state.info.storage_endpoint).unwrap_or_default();
    let provider = state
        .oidc
        .as_ref()
        .and_then(|o| origin_of(&o.settings().issuer))
        .unwrap_or_default();
    // Frames only ever hold the PDF preview, a link to the store.
    let frames = if store.is_empty() {
        "'none'"
    } else {
        store.as_str()
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: {store}; \
         media-src 'self' {store}; frame-src {frames}; connect-src 'self'; \
         object-src 'none'; base-uri 'self'; frame-ancestors 'self'; form-action 'self' {provider}"
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{authority}"))
}

/// CSRF protection and security headers. A browser marks every cross-site request with
/// `Origin` (or `Sec-Fetch-Site`); state-changing ones from another site are refused, on top
/// of the SameSite=Lax session cookie. API clients (oscar-python, MinIO) send neither.
async fn web_security(
    State(csp): State<Arc<HeaderValue>>,
    request: Request,
    next: Next,
) -> Response {
    // An exposed service's app answers for itself: its own forms, caching and headers, and
    // its pages sandboxed by the proxy (`rest::exposed`), which never passes the platform's
    // session on.
    if app::web::rest::exposed::is_proxied(request.uri().path()) {
        return next.run(request).await;
    }
    let safe = matches!(
        *request.method(),
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    );
    if !safe && cross_site(request.headers()) {
        tracing::warn!(path = %request.uri().path(), "cross-site request refused");
        return model::AppError::Forbidden(
            "cross-site request refused: this action must come from the dashboard's own pages"
                .into(),
        )
        .into_response();
    }
    // API answers are per caller and some carry keys (`/system/config`, the Info page's store
    // keys): no cache, shared or the browser's, may keep them.
    let api = ["/system/", "/api/"]
        .iter()
        .any(|prefix| request.uri().path().starts_with(prefix));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if api && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, (*csp).clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Whether a request comes from a page of another site.
fn cross_site(headers: &http::HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    match text(header::ORIGIN) {
        Some(origin) => {
            let authority = origin.split_once("://").map(|(_, a)| a);
            let ours = [
                text(header::HOST),
                text(HeaderName::from_static("x-forwarded-host")),
            ];
            !ours.iter().flatten().any(|host| authority == Some(*host))
        }
        None => text(HeaderName::from_static("sec-fetch-site")) == Some("cross-site"),
    }
}

/// Paths anyone may request. Server functions and the REST API check the caller themselves
/// (the login function must be reachable signed out); static files carry no data.
fn is_public(path: &str) -> bool {
    // `/metrics` checks its own bearer token or the admin.
    matches!(
        path,
        "/health"
            | "/favicon.svg"
            | "/metrics"
            | app::web::rest::openapi::DOCUMENT
            | app::pages::LOGIN
    ) || path.starts_with("/api/")
        || path.starts_with(app::web::rest::openapi::PAGE)
        || path.starts_with("/auth/")
        || path.starts_with("/system/")
        || path.starts_with("/job/")
        || path.starts_with("/run/")
        || path.starts_with("/pkg/")
}

/// Server functions a signed-out visitor may call.
const SIGNED_OUT_FUNCTIONS: &[&str] = &["/api/auth/login", "/api/auth/me"];
/// Largest body of a server function a signed-out visitor may call (a login form).
const SIGNED_OUT_BODY: u64 = 64 * 1024;

/// Signed-out visitors of a page go to the login page and come back after signing in. A
/// server function reads its whole body before it can check the caller, so their bodies are
/// bounded here, and a signed-out caller of any but the sign-in functions is refused before
/// a byte of it is read.
async fn require_sign_in(
    State(payload_limit): State<u64>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let function = request.method() == http::Method::POST && path.starts_with("/api/");
    if function {
        let signed_out_function = SIGNED_OUT_FUNCTIONS.contains(&path);
        let (limit, setting) = if signed_out_function {
            (SIGNED_OUT_BODY, "for signing in")
        } else {
            match domain::auth::current_user(&session).await {
                Ok(Some(_)) => (payload_limit, "OSCAR_MAX_PAYLOAD_BYTES"),
                Ok(None) => return model::AppError::unauthorized().into_response(),
                Err(err) => return err.into_response(),
            }
        };
        return match bounded(request, limit, setting) {
            Ok(request) => next.run(request).await,
            Err(refused) => refused.into_response(),
        };
    }
    if is_public(path) {
        return next.run(request).await;
    }
    match domain::auth::current_user(&session).await {
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
                model::url::percent_encode(back, b"/")
            );
            Redirect::to(&target).into_response()
        }
        Ok(None) => model::AppError::unauthorized().into_response(),
        Err(err @ model::AppError::Unavailable(_)) if request.method() == http::Method::GET => {
            unavailable_page(&err.to_string())
        }
        Err(err) => err.into_response(),
    }
}

/// The request with a body that ends in an error past `limit` bytes; 413 at once when its
/// declared length is over.
fn bounded(request: Request, limit: u64, setting: &'static str) -> model::AppResult<Request> {
    let (parts, body) = request.into_parts();
    let chunks = app::web::rest::body::limited(body, limit, setting)?;
    Ok(Request::from_parts(
        parts,
        axum::body::Body::from_stream(chunks),
    ))
}

/// What a browser shows while the database is down: the reason, and a retry by itself.
fn unavailable_page(message: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"10\"><title>Temporarily unavailable</title>\
         <link rel=\"stylesheet\" href=\"/pkg/oscar.css\"></head><body><main class=\"page\">\
         <h1>Temporarily unavailable</h1><p>{}.</p><p>Uploaded files and queued jobs are kept; \
         this page tries again every 10 seconds.</p></main></body></html>",
        html_escape(message)
    );
    (
        http::StatusCode::SERVICE_UNAVAILABLE,
        [(http::header::RETRY_AFTER, "10")],
        axum::response::Html(page),
    )
        .into_response()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_site_requests_are_recognised() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = http::HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, HeaderValue::from_static(v));
            }
            map
        };
        let host = ("host", "oscar.example:3000");
        assert!(!cross_site(&headers(&[host])), "API clients send no Origin");
        assert!(!cross_site(&headers(&[
            host,
            ("origin", "http://oscar.example:3000")
        ])));
        assert!(cross_site(&headers(&[
            host,
            ("origin", "https://evil.example")
        ])));
        assert!(cross_site(&headers(&[host, ("origin", "null")])));
        assert!(cross_site(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!cross_site(&headers(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!cross_site(&headers(&[
            ("host", "10.0.0.5:3000"),
            ("x-forwarded-host", "oscar.example"),
            ("origin", "https://oscar.example"),
        ])));
        assert_eq!(
            origin_of("http://127.0.0.1:9000/x").as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }

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
