//! Who is calling the REST API: the local admin with HTTP Basic (oscar-cli's and oscar-python's
//! cluster credentials), an OIDC user with `Bearer <access token>`, or, on `/job` and `/run`,
//! anyone holding the service's token.

use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::request::Parts;
use http::{StatusCode, header};

use subtle::ConstantTimeEq;

use crate::web::state::AppState;
use crate::{AppError, AppResult};
use domain::access::Caller;
use domain::{auth, services};
use model::Timestamp;
use model::service::Service;

/// The client's address, for the sign-in throttle ("unknown" when not served over TCP).
pub struct Client(pub String);

impl<S> FromRequestParts<S> for Client
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        Ok(Self(state.client_address(parts)))
    }
}

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
        let client = state.client_address(parts);
        match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => caller_of(&state, value, &client).await,
            None => Err(AppError::Unauthorized(
                "missing Authorization header (HTTP Basic with the admin account, or Bearer with an OIDC access token)".into(),
            )),
        }
        .map(Self)
        .map_err(challenge)
    }
}

/// The caller an `Authorization` header names: the admin (HTTP Basic) or an OIDC user.
pub async fn caller_of(
    state: &AppState,
    value: &http::HeaderValue,
    client: &str,
) -> AppResult<Caller> {
    match credentials_in(value) {
        Some(Credentials::Basic(encoded)) => basic_admin(state, client, encoded),
        Some(Credentials::Bearer(token)) => oidc_user(state, token).await,
        None => Err(AppError::Unauthorized(
            "unknown Authorization scheme (HTTP Basic or Bearer)".into(),
        )),
    }
}

pub(super) enum Credentials<'a> {
    Basic(&'a str),
    Bearer(&'a str),
}

fn credentials(headers: &http::HeaderMap) -> Option<Credentials<'_>> {
    credentials_in(headers.get(header::AUTHORIZATION)?)
}

pub(super) fn credentials_in(value: &http::HeaderValue) -> Option<Credentials<'_>> {
    let value = value.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Credentials::Basic(rest))
    } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Some(Credentials::Bearer(rest))
    } else {
        None
    }
}

/// HTTP Basic's `user:password`, decoded (no `:`: all of it is the user).
pub(super) fn basic_pair(encoded: &str) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())?;
    let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
    Some((user.to_string(), password.to_string()))
}

fn basic_admin(state: &AppState, client: &str, encoded: &str) -> AppResult<Caller> {
    let (user, password) = basic_pair(encoded)
        .ok_or_else(|| AppError::Unauthorized("malformed HTTP Basic credentials".into()))?;
    auth::check_admin(state, client, &user, &password)
        .map_err(|e| match e {
            AppError::Unauthorized(_) => AppError::Unauthorized("invalid credentials".into()),
            other => other,
        })
        .map(|()| Caller::admin())
}

/// An OIDC access token, verified with the provider and passed through the VO gate.
async fn oidc_user(state: &AppState, token: &str) -> AppResult<Caller> {
    let Some(oidc) = &state.oidc else {
        return Err(AppError::Unauthorized(
            "bearer tokens need an identity provider, and none is configured here (OIDC_CLIENT_ID)"
                .into(),
        ));
    };
    let profile = oidc.verify_bearer(token, Timestamp::now()).await?;
    oidc.admit(&profile)?;
    Ok(Caller::user(profile.subject, profile.vos))
}

/// Who invokes a service (`/job`, `/run`), and the service: the admin with Basic (oscar-cli
/// sends the cluster credentials), anyone with the service's token (acting as the owner), or
/// an OIDC user the service is visible to. Credentials are checked before the service is
/// looked up, so anonymous callers learn nothing of which services exist (401 for every name);
/// a signed-in caller gets 404 for services they may not see, like missing ones.
pub async fn invoker(
    state: &AppState,
    headers: &http::HeaderMap,
    parts_client: &str,
    name: &str,
) -> AppResult<(Caller, Service)> {
    match credentials(headers) {
        Some(Credentials::Basic(encoded)) => {
            let caller = basic_admin(state, parts_client, encoded)?;
            Ok((caller, services::require(&state.db, name).await?))
        }
        Some(Credentials::Bearer(token)) => {
            let found = services::get(&state.db, name).await?;
            if let Some(service) = found.as_ref()
                && same_secret(token, &service.token)
            {
                return Ok((Caller::user(&service.owner, Vec::new()), service.clone()));
            }
            if state.oidc.is_none() {
                return Err(AppError::Unauthorized(
                    "invalid token for this service".into(),
                ));
            }
            let caller = oidc_user(state, token).await?;
            match found {
                Some(service) if services::visible(&caller, &service) => Ok((caller, service)),
                _ => Err(services::not_found(name)),
            }
        }
        None => Err(AppError::Unauthorized(
            "missing Authorization header (Bearer with the service token or an OIDC access token, or HTTP Basic)".into(),
        )),
    }
}

/// Compared in constant time; an empty secret never matches.
pub(super) fn same_secret(given: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// Checks the Authorization header is `Bearer <expected>`.
pub fn require_bearer(headers: &http::HeaderMap, expected: &str) -> AppResult<()> {
    match credentials(headers) {
        Some(Credentials::Bearer(token)) if same_secret(token, expected) => Ok(()),
        _ => Err(AppError::Unauthorized(
            "invalid or missing webhook token".into(),
        )),
    }
}

/// A 401 tells clients which schemes work.
fn challenge(err: AppError) -> Response {
    let mut response = err.into_response();
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"OSCAR\", Bearer realm=\"OSCAR\""),
        );
    }
    response
}
