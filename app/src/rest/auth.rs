//! Who is calling the REST API. Today: the local admin with HTTP Basic (what oscar-cli and
//! oscar-python send for cluster credentials). OIDC bearer tokens come with the identity issue.

use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::request::Parts;
use http::{StatusCode, header};

use crate::server::services::Caller;
use crate::server::state::AppState;

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
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((user, password)) if state.admin.verify(user, password) => {
                Ok(Self(Caller::admin()))
            }
            _ => Err(unauthorized("invalid credentials")),
        }
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
