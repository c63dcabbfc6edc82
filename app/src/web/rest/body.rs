//! Request bodies read only up to a limit: handlers that read a body themselves (invocations)
//! and the bound the router puts on server functions, which read theirs whole.

use axum::body::{Body, Bytes, HttpBody};
use futures_util::{Stream, StreamExt};

use crate::{AppError, AppResult};

/// The body's chunks, refused with 413 (naming `setting`) as soon as they pass `limit` bytes;
/// a declared length over it is refused before anything is read.
pub fn limited(
    body: Body,
    limit: u64,
    setting: &'static str,
) -> AppResult<impl Stream<Item = AppResult<Bytes>> + Send + use<>> {
    let too_large = move || {
        AppError::PayloadTooLarge(format!(
            "the request body is larger than this server's limit of {limit} bytes ({setting})"
        ))
    };
    if HttpBody::size_hint(&body).lower() > limit {
        return Err(too_large());
    }
    let mut received = 0u64;
    Ok(body.into_data_stream().map(move |chunk| {
        let chunk =
            chunk.map_err(|e| AppError::bad_request("body", format!("could not be read: {e}")))?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(too_large());
        }
        Ok(chunk)
    }))
}
