//! Transfers between the browser and the store, streamed both ways.
//!
//! `PUT /api/upload/{bucket}/{key}`: uploads go to the store part by part (memory bounded by
//! the part size, size limit enforced while streaming). A file that lands in a service's input
//! folder starts its job here too, from the ETag the store answered (nothing is read back),
//! which also covers external stores without notifications; the store's own report of it
//! makes no second job.
//!
//! `GET /api/download/object/{bucket}/{key}`: one object, as a file saved by the browser.
//!
//! `GET /api/download/zip/{bucket}?prefix=…&key=…&folder=…`: several objects and whole
//! folders as one ZIP, written while the objects are read.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};
use tower_sessions::Session;

use super::state::AppState;
use crate::{AppError, AppResult};
use domain::buckets::Access;
use domain::jobs::{Trigger, events};
use domain::zip_stream::ZipStream;
use model::Timestamp;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/upload/{bucket}/{*key}", put(upload))
        // The limit is the platform's own (`OSCAR_UPLOAD_LIMIT`), checked while streaming.
        .layer(DefaultBodyLimit::disable())
        .route("/api/download/object/{bucket}/{*key}", get(download_object))
        .route("/api/download/zip/{bucket}", get(download_zip))
}

async fn upload(
    State(state): State<AppState>,
    session: Session,
    Path((bucket, key)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> AppResult<Json<Value>> {
    let caller = domain::auth::signed_in(&session).await?;
    let record =
        domain::buckets::authorize(&state.db, &state.s3.client, &caller, &bucket, Access::Use)
            .await?;
    domain::buckets::may_replace(&state.s3.client, &record, &caller, &key).await?;
    let allowance = domain::buckets::Allowance::of(
        &state.db,
        &state.s3.client,
        &record.owner,
        state.s3.upload_limit,
    )
    .await?;
    let version = domain::buckets::upload(
        &state.s3.client,
        &caller,
        &bucket,
        &key,
        // The browser sends the file's type.
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|t| t.to_str().ok()),
        body.into_data_stream(),
        &allowance,
    )
    .await?;
    let size = version.size.unwrap_or_default();
    state.jobs.metrics().uploaded(size);
    // External stores may not report it; the embedded one also does (pages coalesce both).
    state.s3.changed(&bucket);
    let stored = events::Stored {
        event_name: "Put",
        bucket: &bucket,
        key: &key,
        trigger: Trigger::Upload,
        signer: None,
    };
    let jobs = events::stored_version(
        &state.db,
        &state.services,
        &state.jobs,
        stored,
        version,
        Some(&caller.id),
    )
    .await?;
    tracing::info!(%bucket, %key, size, jobs = jobs.len(), "uploaded");
    let jobs: Vec<String> = jobs.into_iter().map(|j| j.name).collect();
    Ok(Json(
        json!({"bucket": bucket, "key": key, "size": size, "jobs": jobs}),
    ))
}

/// Always a download, whatever the object's type: a stored page never opens as one on the
/// dashboard's origin.
async fn download_object(
    State(state): State<AppState>,
    session: Session,
    Path((bucket, key)): Path<(String, String)>,
) -> AppResult<Response> {
    let caller = domain::auth::signed_in(&session).await?;
    domain::buckets::authorize(&state.db, &state.s3.client, &caller, &bucket, Access::Use).await?;
    let object = domain::buckets::open(&state.s3.client, &bucket, &key).await?;
    let name = key.rsplit('/').next().unwrap_or(&key);
    let length = object.content_length();
    let body = Body::from_stream(futures_util::stream::unfold(
        object.body,
        |mut body| async move {
            let chunk = body.next().await?;
            Some((chunk.map_err(std::io::Error::other), body))
        },
    ));
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename*=UTF-8''{}",
                    model::url::percent_encode(name, b"")
                ),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        body,
    )
        .into_response();
    // The browser shows the download's progress.
    if let Some(length) = length {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, length.into());
    }
    Ok(response)
}

/// Chunks in flight between the reader of the store and the browser.
const ZIP_BUFFER: usize = 8;

/// `prefix` is the folder shown; entries are named relative to it. `key` and `folder`
/// repeat.
async fn download_zip(
    State(state): State<AppState>,
    session: Session,
    Path(bucket): Path<String>,
    RawQuery(query): RawQuery,
) -> AppResult<Response> {
    let caller = domain::auth::signed_in(&session).await?;
    domain::buckets::authorize(&state.db, &state.s3.client, &caller, &bucket, Access::Use).await?;
    let mut prefix = String::new();
    let mut keys = Vec::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "prefix" => prefix = value.into_owned(),
            "key" => {
                domain::buckets::check_key("key", &value)?;
                keys.push(value.into_owned());
            }
            "folder" => {
                domain::buckets::check_key("folder", &value)?;
                let folder = format!("{}/", value.trim_end_matches('/'));
                keys.extend(
                    domain::buckets::keys_under(&state.s3.client, &bucket, &folder)
                        .await?
                        .into_iter()
                        .filter(|k| !k.ends_with('/')),
                );
            }
            other => return Err(AppError::bad_request(other, "is not a download parameter")),
        }
    }
    if keys.is_empty() {
        return Err(AppError::bad_request(
            "key",
            "choose at least one file or folder",
        ));
    }
    let (sender, receiver) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(ZIP_BUFFER);
    let s3 = state.s3.clone();
    let archive_bucket = bucket.clone();
    tokio::spawn(async move {
        if let Err(err) = write_zip(&s3.client, &archive_bucket, &prefix, &keys, &sender).await {
            // The response has started: the browser sees a broken download, the log says why.
            tracing::warn!(bucket = %archive_bucket, %err, "zip download stopped");
            let _ = sender.send(Err(std::io::Error::other(err))).await;
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
    ));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.zip\"", bucket),
            ),
        ],
        body,
    )
        .into_response())
}

async fn write_zip(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    keys: &[String],
    out: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), String> {
    let send = |bytes: Vec<u8>| async move {
        out.send(Ok(Bytes::from(bytes)))
            .await
            .map_err(|_| "the browser went away".to_string())
    };
    let mut zip = ZipStream::default();
    for key in keys {
        let name = key.strip_prefix(prefix).unwrap_or(key);
        let object = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| format!("cannot read {key}: {}", supervisor::storage::describe(&e)))?;
        // Each entry keeps its object's time, as a file copied from the store would.
        let modified = object
            .last_modified()
            .map_or_else(Timestamp::now, domain::store::time_of);
        send(zip.start_entry(name, modified)).await?;
        let mut body = object.body;
        let mut crc = crc32fast::Hasher::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| format!("cannot read {key}: {e}"))?;
            crc.update(&chunk);
            size += chunk.len() as u64;
            out.send(Ok(chunk))
                .await
                .map_err(|_| "the browser went away".to_string())?;
        }
        send(zip.finish_entry(crc.finalize(), size)).await?;
    }
    send(zip.finish()).await
}
