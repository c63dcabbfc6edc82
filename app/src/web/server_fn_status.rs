//! Server functions answer every error with 500; this gives each its own status (400 for a
//! bad field, 401, 404…), including errors raised before the function body runs, such as
//! undecodable arguments. The error travels as JSON in the body, marked by a header.

use axum::body::{Body, HttpBody, to_bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use leptos::server_fn::error::SERVER_FN_ERROR_HEADER;
use model::AppError;

/// Errors are a few hundred bytes; anything longer is left as it is.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

pub async fn set_status(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if !response.headers().contains_key(SERVER_FN_ERROR_HEADER) {
        return response;
    }
    let small = response
        .body()
        .size_hint()
        .upper()
        .is_some_and(|n| n <= ERROR_BODY_LIMIT as u64);
    if !small {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, ERROR_BODY_LIMIT).await else {
        return Response::from_parts(parts, Body::empty());
    };
    if let Some(status) = serde_json::from_slice::<AppError>(&bytes)
        .ok()
        .and_then(|err| http::StatusCode::from_u16(err.status()).ok())
    {
        parts.status = status;
    }
    Response::from_parts(parts, Body::from(bytes))
}
