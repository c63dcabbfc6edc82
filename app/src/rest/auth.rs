//! Who is calling the REST API. Today: the local admin with HTTP Basic (what oscar-cli and
//! oscar-python send for cluster credentials). OIDC bearer tokens come with the identity issue.

use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::request::Parts;
use http::{StatusCode, header};

use subtle::ConstantTimeEq;

use crate::server::access::Caller;
use crate::server::state::AppState;
use crate::service::Service;
use crate::{AppError, AppResult};

/// An authenticated REST caller.
pub struct Principal(pub Caller);

impl<S> FromRequestParts<S> for Principal
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some((scheme, credentials)) = header.and_then(|h| h.split_once(' ')) else {
            return Err(unauthorized(
                "missing Authorization header (HTTP Basic with the admin account)",
            ));
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(unauthorized(
                "only HTTP Basic authentication is accepted here",
            ));
        }
        basic_admin(&state, credentials)
            .map(Self)
            .ok_or_else(|| unauthorized("invalid credentials"))
    }
}

fn basic_admin(state: &AppState, credentials: &str) -> Option<Caller> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())?;
    let (user, password) = decoded.split_once(':')?;
    state.admin.verify(user, password).then(Caller::admin)
}

/// Who invokes a service (`/job`, `/run`): the admin with Basic, or anyone holding the
/// service's token as `Bearer` (compared in constant time). Acts as the service owner then.
pub fn invoker(
    state: &AppState,
    headers: &http::HeaderMap,
    service: &Service,
) -> AppResult<Caller> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some((scheme, credentials)) = header.and_then(|h| h.split_once(' ')) else {
        return Err(AppError::Unauthorized(
            "missing Authorization header (Bearer with the service token, or HTTP Basic)".into(),
        ));
    };
    if scheme.eq_ignore_ascii_case("basic") {
        return basic_admin(state, credentials)
            .ok_or_else(|| AppError::Unauthorized("invalid credentials".into()));
    }
    if bearer_is(scheme, credentials, &service.token) {
        return Ok(Caller::user(&service.owner, Vec::new()));
    }
    Err(AppError::Unauthorized(
        "invalid token for this service".into(),
    ))
}

/// Whether `scheme credentials` is `Bearer <expected>` (compared in constant time).
fn bearer_is(scheme: &str, credentials: &str, expected: &str) -> bool {
    scheme.eq_ignore_ascii_case("bearer")
        && !expected.is_empty()
        && bool::from(credentials.trim().as_bytes().ct_eq(expected.as_bytes()))
}

/// Checks the Authorization header is `Bearer <expected>`.
pub fn require_bearer(headers: &http::HeaderMap, expected: &str) -> AppResult<()> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match header.and_then(|h| h.split_once(' ')) {
        Some((scheme, credentials)) if bearer_is(scheme, credentials, expected) => Ok(()),
        _ => Err(AppError::Unauthorized(
            "invalid or missing webhook token".into(),
        )),
    }
}

fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"OSCAR\"")],
        message.to_string(),
    )
        .into_response()
}
