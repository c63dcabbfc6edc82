//! Inputs in other providers: a WebDAV server (dCache among them) or another S3 store sends
//! this platform no events, so their input folders are listed every `poll_every` and each
//! file version not seen before becomes one job, as an event would have made it. Versions
//! are told apart by provider, key and ETag (the modification time where a server gives no
//! ETag), so a file is processed once however many servers poll it; files older than their
//! service, or than the jobs the platform remembers, are left alone, as the reconciler does
//! for the platform's store.
//!
//! The job's event is the original MinIO-form record wrapped with its provider
//! (`{"storage_provider": "webdav.dcache", "event": …}`, upstream's delegation form), so the
//! supervisor downloads the input from that provider with the service's credentials.

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};

use model::function::event::{StorageEvent, minio_event};
use model::service::{Service, StorageIo};
use model::services::InputPoll;
use model::{AppResult, Timestamp};
use serde_json::json;
use supervisor::remote::{Failure, Listed, Remote};

use super::events::{Seen, creation_times, memory_horizon, storage_job};
use super::queue::enqueue;
use super::{Jobs, Trigger, executor};
use crate::db::Database;
use crate::services::{self, Catalog};

/// Services whose inputs are listed at once.
const POLLED_AT_ONCE: usize = 8;

/// The longest one input folder's listing may take: a slow or hostile server (the service
/// owner's choice) holds up a polling pass at most this long.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);

/// Lists every service's inputs in other providers and queues what is new. A provider that
/// cannot be reached or refuses is logged and skipped: the other inputs are still polled.
/// Returns the jobs made.
pub async fn poll(db: &Database, catalog: &Catalog, jobs: &Jobs) -> AppResult<usize> {
    let created = creation_times(db).await?;
    let horizon = memory_horizon(jobs);
    let services = catalog.list(db).await?;
    let mut polled = Vec::new();
    for service in services.iter() {
        let Some(created_at) = created.get(&service.name) else {
            continue;
        };
        // A federation member's copy: its inputs are the origin's, which watches them.
        if service
            .annotations
            .contains_key(crate::federation::members::REPLICA_OF)
        {
            continue;
        }
        if service.input.iter().any(|i| !i.in_platform_store()) {
            let since = created_at.secs().max(horizon);
            polled.push(poll_service(db, jobs, service, since).boxed());
        }
    }
    // A few at once: one slow server holds up its own service, not everyone's.
    let mut passes = futures_util::stream::iter(polled).buffer_unordered(POLLED_AT_ONCE);
    let mut made = 0;
    while let Some(pass) = passes.next().await {
        made += pass?;
    }
    Ok(made)
}

/// `since`: files modified earlier were there before the service, or had their job longer ago
/// than the platform remembers.
async fn poll_service(
    db: &Database,
    jobs: &Jobs,
    service: &Service,
    since: i64,
) -> AppResult<usize> {
    let name = &service.name;
    let secrets = services::load_secrets(db, name).await?;
    let config = executor::provider_config(service, &secrets);
    let seen = Seen::load(db, name).await?;
    let mut made = 0;
    for input in service.input.iter().filter(|i| !i.in_platform_store()) {
        let provider = &input.storage_provider;
        let (bucket, _) = input.bucket_and_folder();
        let listed = match Remote::connect(None, &config, provider) {
            Ok(remote) => {
                tokio::time::timeout(LIST_TIMEOUT, remote.list(bucket, &input.folder_prefix()))
                    .await
                    .unwrap_or_else(|_| {
                        Err(Failure::Transient(format!(
                            "listing took longer than {}s",
                            LIST_TIMEOUT.as_secs()
                        )))
                    })
                    .map_err(|f| f.to_string())
            }
            Err(reason) => Err(reason),
        };
        let outcome = listed.as_ref().map(Vec::len).map_err(String::as_str);
        record(db, name, input, outcome, Timestamp::now()).await?;
        let listed = match listed {
            Ok(listed) if listed.len() >= supervisor::remote::LIST_LIMIT => {
                tracing::warn!(service = %name, %provider, limit = listed.len(), "an input folder holds more files than one listing reads: the rest waits until files are removed");
                listed
            }
            Ok(listed) => listed,
            Err(reason) => {
                tracing::warn!(service = %name, %provider, %reason, "cannot poll an input folder");
                continue;
            }
        };
        for file in listed {
            let event = event_of(provider, bucket, &file);
            let old = file.modified.is_some_and(|m| m < since);
            let accepted = input
                .relative_key(bucket, &file.key)
                .is_some_and(|relative| input.accepts(relative));
            if old || !accepted || seen.versions.contains(&event.object_version()) {
                continue;
            }
            let record = minio_event(
                "Put",
                bucket,
                &file.key,
                file.etag.as_deref(),
                file.size,
                &event
                    .time
                    .clone()
                    .unwrap_or_else(|| Timestamp::now().rfc3339()),
            );
            let raw = json!({"storage_provider": provider, "event": record}).to_string();
            let job = storage_job(service, &event, &raw, Trigger::Poll);
            if enqueue(db, jobs, job).await?.created {
                tracing::info!(service = %name, %provider, key = %file.key, "polling queued a job for a new file");
                made += 1;
            }
        }
    }
    Ok(made)
}

/// `provider:path`, how an input is named in its poll record.
fn input_name(input: &StorageIo) -> String {
    format!("{}:{}", input.storage_provider, input.path)
}

/// Records how listing `input` went: the files it held, or since when and why it fails.
async fn record(
    db: &Database,
    service: &str,
    input: &StorageIo,
    outcome: Result<usize, &str>,
    now: Timestamp,
) -> AppResult<()> {
    let query = match outcome {
        Ok(files) => sqlx::query(
            "INSERT INTO input_polls (service, input, polled_at, files, failing_since, error)
             VALUES ($1, $2, $3, $4, NULL, NULL)
             ON CONFLICT (service, input)
             DO UPDATE SET polled_at = $3, files = $4, failing_since = NULL, error = NULL",
        )
        .bind(service)
        .bind(input_name(input))
        .bind(now)
        .bind(files as i64),
        Err(reason) => sqlx::query(
            "INSERT INTO input_polls (service, input, polled_at, files, failing_since, error)
             VALUES ($1, $2, $3, 0, $3, $4)
             ON CONFLICT (service, input)
             DO UPDATE SET polled_at = $3, error = $4,
                 failing_since = COALESCE(input_polls.failing_since, $3)",
        )
        .bind(service)
        .bind(input_name(input))
        .bind(now)
        .bind(reason),
    };
    query.execute(db.pool()).await?;
    Ok(())
}

/// A row of `input_polls`.
#[derive(sqlx::FromRow)]
struct PollRow {
    input: String,
    polled_at: Timestamp,
    files: i64,
    failing_since: Option<Timestamp>,
    error: Option<String>,
}

/// How each of the service's inputs in other providers was last listed, in the service's
/// order; one not listed yet has no time.
pub async fn polls(db: &Database, service: &Service) -> AppResult<Vec<InputPoll>> {
    let rows: Vec<PollRow> = sqlx::query_as(
        "SELECT input, polled_at, files, failing_since, error FROM input_polls WHERE service = $1",
    )
    .bind(&service.name)
    .fetch_all(db.pool())
    .await?;
    Ok(service
        .input
        .iter()
        .filter(|i| !i.in_platform_store())
        .map(|input| {
            let name = input_name(input);
            let row = rows.iter().find(|row| row.input == name);
            InputPoll {
                polled_at: row.map(|r| r.polled_at),
                files: row.map_or(0, |r| r.files),
                failing_since: row.and_then(|r| r.failing_since),
                error: row.and_then(|r| r.error.clone()),
                input: name,
            }
        })
        .collect())
}

fn event_of(provider: &str, bucket: &str, file: &Listed) -> StorageEvent {
    StorageEvent {
        provider: provider.to_string(),
        bucket: bucket.to_string(),
        key: file.key.clone(),
        etag: file.etag.clone(),
        version_id: None,
        size: file.size,
        // The version when there is no ETag: a file rewritten later is a new version. With
        // neither, the key alone: one job per file.
        time: file.modified.map(|m| Timestamp::from_secs(m).rfc3339()),
        name: Some("s3:ObjectCreated:Put".into()),
    }
}
