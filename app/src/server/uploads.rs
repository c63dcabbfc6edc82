//! `PUT /api/upload/{bucket}/{key}`: the dashboard's uploads, streamed to the store part by
//! part (memory bounded by the part size, size limit enforced while streaming). A file that
//! lands in a service's input folder starts its job here too, which also covers external
//! stores without notifications; the store's own report of it makes no second job.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::routing::put;
use serde_json::{Value, json};
use tower_sessions::Session;

use super::jobs::{Trigger, events};
use super::state::AppState;
use crate::{AppError, AppResult};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/upload/{bucket}/{*key}", put(upload))
        // The limit is the platform's own (`OSCAR_UPLOAD_LIMIT`), checked while streaming.
        .layer(DefaultBodyLimit::disable())
}

async fn upload(
    State(state): State<AppState>,
    session: Session,
    Path((bucket, key)): Path<(String, String)>,
    body: Body,
) -> AppResult<Json<Value>> {
    super::auth::current_user(&session)
        .await?
        .ok_or_else(AppError::unauthorized)?;
    let size = super::buckets::upload(
        &state.s3,
        &bucket,
        &key,
        body.into_data_stream(),
        state.s3.upload_limit,
    )
    .await?;
    let jobs = events::stored_object(
        &state.db,
        &state.jobs,
        &state.s3,
        "Put",
        &bucket,
        &key,
        Trigger::Upload,
    )
    .await?;
    tracing::info!(%bucket, %key, size, jobs = jobs.len(), "uploaded");
    let jobs: Vec<String> = jobs.into_iter().map(|j| j.name).collect();
    Ok(Json(
        json!({"bucket": bucket, "key": key, "size": size, "jobs": jobs}),
    ))
}
