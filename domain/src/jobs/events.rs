//! Event sources: storage notifications routed to the services whose input folders they hit,
//! `POST /job` bodies, and the reconciler that finds input objects whose event was lost.

use std::collections::{HashMap, HashSet};

use aws_sdk_s3::Client;
use model::function::event::{Event, StorageEvent, minio_event};

use super::queue::{Enqueued, Handover, NewJob, enqueue};
use super::{Jobs, Trigger};
use crate::access::Caller;
use crate::db::Database;
use crate::services::{self, Catalog};
use crate::store::{refused, refused_in};
use crate::store_keys;
use model::service::{PLATFORM_STORE, Service, StorageIo};
use model::{AppError, AppResult, Timestamp};

/// The key relative to this input's folder, when `bucket/key` of `provider` is a file in it
/// (at any depth).
fn relative_to_input<'k>(
    input: &StorageIo,
    provider: &str,
    bucket: &str,
    key: &'k str,
) -> Option<&'k str> {
    if input.storage_provider != provider || key.ends_with('/') {
        return None;
    }
    input.relative_key(bucket, key)
}

/// Whether a key in `bucket` of the platform store is inside this input's folder, whatever
/// the filters say.
pub fn input_folder_holds(input: &StorageIo, bucket: &str, key: &str) -> bool {
    relative_to_input(input, PLATFORM_STORE, bucket, key).is_some()
}

/// Whether a key in `bucket` of the platform store falls in this input's folder and passes
/// its filters.
pub fn input_accepts(input: &StorageIo, bucket: &str, key: &str) -> bool {
    relative_to_input(input, PLATFORM_STORE, bucket, key)
        .is_some_and(|relative| input.accepts(relative))
}

/// User metadata the dashboard puts on what it uploads: the store sees the platform's root key,
/// this names the signed-in user it uploaded for.
pub const UPLOADER_METADATA: &str = embedded_s3::UPLOADER;

/// An object was created in the platform store: one job for each service with an input
/// folder it falls in (at most one per object version, however often this is called). The job
/// belongs to the uploader when known and the service is visible to them, else to the
/// service's owner.
pub async fn object_created(
    db: &Database,
    catalog: &Catalog,
    jobs: &Jobs,
    event: &StorageEvent,
    raw_event: &str,
    trigger: Trigger,
    uploader: Option<&str>,
) -> AppResult<Vec<Enqueued>> {
    let all = catalog.list(db).await?;
    object_created_among(db, jobs, &all, event, raw_event, trigger, uploader).await
}

/// [`object_created`] with the services already read.
async fn object_created_among(
    db: &Database,
    jobs: &Jobs,
    services: &[Service],
    event: &StorageEvent,
    raw_event: &str,
    trigger: Trigger,
    uploader: Option<&str>,
) -> AppResult<Vec<Enqueued>> {
    let mut enqueued = Vec::new();
    for service in accepting(services, &event.bucket, &event.key) {
        let mut job = storage_job(service, event, raw_event, trigger);
        if let Some(uploader) = uploader
            && services::visible(&Caller::user(uploader, Vec::new()), service)
        {
            job.owner = uploader.to_string();
        }
        enqueued.push(enqueue(db, jobs, job).await?);
    }
    Ok(enqueued)
}

/// The services with an input that takes this object.
fn accepting<'s>(
    services: &'s [Service],
    bucket: &'s str,
    key: &'s str,
) -> impl Iterator<Item = &'s Service> {
    services.iter().filter(move |service| {
        service
            .input
            .iter()
            .any(|input| input_accepts(input, bucket, key))
    })
}

pub(super) fn storage_job(
    service: &Service,
    event: &StorageEvent,
    raw_event: &str,
    trigger: Trigger,
) -> NewJob {
    NewJob {
        service: service.name.clone(),
        owner: service.owner.clone(),
        trigger,
        event: raw_event.to_string(),
        input: Some(format!("{}/{}", event.bucket, event.key)),
        object: Some(event.object_version()),
        handover: Handover::default(),
    }
}

/// An object the platform store reports as created, or the dashboard uploaded.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    /// `Put`, `Copy` or `CompleteMultipartUpload`.
    pub event_name: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
    pub trigger: Trigger,
    /// The key that stored it unless it was the platform's own, in which case the dashboard's
    /// metadata names the uploader.
    pub signer: Option<&'a str>,
}

/// What the store says of an object version it holds.
#[derive(Debug, Clone, Default)]
pub struct Version {
    /// Without quotes.
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub size: Option<u64>,
}

impl Version {
    pub fn new(etag: Option<&str>, version_id: Option<&str>, size: u64) -> Self {
        Self {
            etag: etag.map(|e| e.trim_matches('"').to_string()),
            version_id: version_id.map(str::to_string),
            size: Some(size),
        }
    }
}

/// An object was stored: its ETag and size are read back so the event looks like MinIO's.
/// The same object reported both ways makes one job.
pub async fn stored_object(
    db: &Database,
    catalog: &Catalog,
    jobs: &Jobs,
    s3: &Client,
    stored: Stored<'_>,
) -> AppResult<Vec<Enqueued>> {
    // Most objects start nothing: those are not read back.
    let all = catalog.list(db).await?;
    if accepting(&all, stored.bucket, stored.key).next().is_none() {
        return Ok(Vec::new());
    }
    let head = match s3
        .head_object()
        .bucket(stored.bucket)
        .key(stored.key)
        .send()
        .await
    {
        Ok(head) => head,
        // Deleted since it was stored: there is nothing left to process.
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {
            tracing::info!(bucket = %stored.bucket, key = %stored.key, "stored object gone before it was read back: no job");
            return Ok(Vec::new());
        }
        Err(e) => return Err(refused("key", e)),
    };
    let version = Version {
        etag: head.e_tag().map(|e| e.trim_matches('"').to_string()),
        version_id: head.version_id().map(str::to_string),
        size: head.content_length().and_then(|s| u64::try_from(s).ok()),
    };
    let uploader = match stored.signer {
        Some(key) => store_keys::user_of(db, key).await?,
        None => head
            .metadata()
            .and_then(|m| m.get(UPLOADER_METADATA))
            .cloned(),
    };
    stored_version_among(db, jobs, &all, stored, version, uploader.as_deref()).await
}

/// An object version the platform stored itself, for `uploader`: what the store answered
/// is all the event needs (no second request to read it back).
pub async fn stored_version(
    db: &Database,
    catalog: &Catalog,
    jobs: &Jobs,
    stored: Stored<'_>,
    version: Version,
    uploader: Option<&str>,
) -> AppResult<Vec<Enqueued>> {
    let all = catalog.list(db).await?;
    stored_version_among(db, jobs, &all, stored, version, uploader).await
}

/// [`stored_version`] with the services already read.
async fn stored_version_among(
    db: &Database,
    jobs: &Jobs,
    services: &[Service],
    stored: Stored<'_>,
    version: Version,
    uploader: Option<&str>,
) -> AppResult<Vec<Enqueued>> {
    let Stored {
        event_name,
        bucket,
        key,
        trigger,
        ..
    } = stored;
    let Version {
        etag,
        version_id,
        size,
    } = version;
    let time = Timestamp::now().rfc3339();
    let raw = minio_event(event_name, bucket, key, etag.as_deref(), size, &time).to_string();
    let event = StorageEvent {
        provider: PLATFORM_STORE.into(),
        bucket: bucket.into(),
        key: key.into(),
        etag,
        version_id,
        size,
        time: Some(time),
        name: Some(format!("s3:ObjectCreated:{event_name}")),
    };
    object_created_among(db, jobs, services, &event, &raw, trigger, uploader).await
}

/// A storage event an invocation body holds, and the event as the job gets it when it was
/// routed to another store than it named ([`invocation_event`]).
pub struct Invocation {
    pub event: StorageEvent,
    pub routed: Option<String>,
}

/// What an invocation body is: a storage event on an object in one of the service's input
/// folders, or a payload. A storage event naming any other object is refused: the job's keys
/// reach all of the service's buckets, so a caller could have the job fetch an object they may
/// not read (another user's output) and return it.
///
/// A MinIO/S3 notification sent as it is names no store. It is the platform store's when one
/// of the service's input folders there holds the object; else the other MinIO or S3 store
/// whose input folder does (a partner MinIO's webhook to `/job/<service>`, with the service's
/// token), and the job gets it wrapped with that store, as a federation member would.
pub fn invocation_event(service: &Service, body: &[u8]) -> AppResult<Option<Invocation>> {
    let Event::Storage(mut event) = Event::parse(body) else {
        return Ok(None);
    };
    let routed = match other_store(service, body, &event)? {
        Some(provider) => {
            event.provider = provider.clone();
            let raw = String::from_utf8_lossy(body);
            Some(serde_json::json!({"storage_provider": provider, "event": raw}).to_string())
        }
        None => None,
    };
    // A WebDAV server (and a URL) resolves `..`: `in/../private` would leave the input folder.
    if model::service::validate::has_dot_segment(&event.key) {
        return Err(AppError::bad_request(
            "Records[0].s3.object.key",
            format!("{:?} has a '.' or '..' segment", event.key),
        ));
    }
    let in_input_folder = service.input.iter().any(|input| {
        relative_to_input(input, &event.provider, &event.bucket, &event.key).is_some()
    });
    if !in_input_folder {
        return Err(AppError::bad_request(
            "Records[0].s3.object.key",
            format!(
                "{}/{} in {} is not in an input folder of service {:?}: storage events may only name objects in its input folders",
                event.bucket, event.key, event.provider, service.name
            ),
        ));
    }
    Ok(Some(Invocation { event, routed }))
}

/// The other S3-type store whose input folder holds the object of an unwrapped notification
/// that no platform-store input folder holds; None when it stays the platform store's.
fn other_store(service: &Service, body: &[u8], event: &StorageEvent) -> AppResult<Option<String>> {
    let holds = |input: &&StorageIo, provider: &str| {
        relative_to_input(input, provider, &event.bucket, &event.key).is_some()
    };
    if event.provider != PLATFORM_STORE
        || service.input.iter().any(|i| holds(&i, PLATFORM_STORE))
        || model::function::event::is_wrapped(body)
    {
        return Ok(None);
    }
    let mut stores: Vec<&str> = service
        .input
        .iter()
        .filter(|i| {
            let provider = i.storage_provider.as_str();
            (provider.starts_with("minio.") || provider.starts_with("s3.")) && holds(i, provider)
        })
        .map(|i| i.storage_provider.as_str())
        .collect();
    stores.sort_unstable();
    stores.dedup();
    match stores.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.to_string())),
        several => Err(AppError::bad_request(
            "Records[0].s3.bucket.name",
            format!(
                "{}/{} is in input folders of several stores ({}): send the event as {{\"storage_provider\": \"<one of them>\", \"event\": …}}",
                event.bucket,
                event.key,
                several.join(", ")
            ),
        )),
    }
}

/// `POST /job/{service}`: a storage event (deduplicated by object version) or a payload,
/// perhaps handed over by a federation member (the job keeps the name it had there).
pub async fn job_request(
    db: &Database,
    jobs: &Jobs,
    caller: &Caller,
    service: &Service,
    body: Vec<u8>,
    handover: Handover,
) -> AppResult<Enqueued> {
    if let Some(name) = &handover.job
        && let Err(why) = model::service::validate::dns_label(name, 63)
    {
        return Err(AppError::bad_request("X-Delegated-Job-ID", why));
    }
    if let Some(from) = &handover.from
        && (from.len() > 253 || from.chars().any(char::is_control))
    {
        return Err(AppError::bad_request(
            "X-Delegated-From",
            "must be a cluster name of at most 253 characters",
        ));
    }
    let text = String::from_utf8(body).map_err(|_| {
        AppError::bad_request(
            "body",
            "must be text: a storage event, JSON, or base64-encoded data",
        )
    })?;
    let new = match invocation_event(service, text.as_bytes())? {
        Some(Invocation { event, routed }) => storage_job(
            service,
            &event,
            routed.as_deref().unwrap_or(&text),
            Trigger::Bucket,
        ),
        None => NewJob {
            service: service.name.clone(),
            owner: caller.id.clone(),
            trigger: Trigger::Api,
            event: text,
            input: None,
            object: None,
            handover: Handover::default(),
        },
    };
    // A job handed over is one job by its name: the cluster that sent it made it once per
    // object already (a rerun there is a new job here too).
    let object = new.object.filter(|_| handover.job.is_none());
    enqueue(
        db,
        jobs,
        NewJob {
            object,
            handover,
            ..new
        },
    )
    .await
}

/// Lists every service's input folders and queues the objects that have no job yet: catches
/// events lost while the platform was down or the store could not reach it. Objects older
/// than the service are left alone (they were there before it). Returns the jobs made.
pub async fn reconcile(
    db: &Database,
    catalog: &Catalog,
    jobs: &Jobs,
    s3: &Client,
) -> AppResult<usize> {
    let created = creation_times(db).await?;
    let horizon = memory_horizon(jobs);
    let mut made = 0;
    // The shared parsed definitions: a pass must stay cheap with thousands of services.
    for service in catalog.list(db).await?.iter() {
        let name = &service.name;
        let Some(&created_at) = created.get(name) else {
            continue;
        };
        if !service.input.iter().any(|i| i.in_platform_store()) {
            continue;
        }
        let seen = Seen::load(db, name).await?;
        for input in service.input.iter().filter(|i| i.in_platform_store()) {
            let bucket = input.bucket_and_folder().0;
            let prefix = input.folder_prefix();
            let mut pages = s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(&prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = match page.map_err(|e| refused_in(bucket, e)) {
                    Ok(page) => page,
                    // The store is down: the whole pass is retried later.
                    Err(err @ AppError::Unavailable(_)) => return Err(err),
                    // This folder only (a bucket removed or closed to us outside the platform):
                    // the other services' folders are still reconciled.
                    Err(err) => {
                        tracing::warn!(service = %name, %bucket, %err, "reconciler: cannot list an input folder");
                        break;
                    }
                };
                for object in page.contents() {
                    let key = object.key().unwrap_or_default();
                    // Modification times have whole seconds: an object written in the second
                    // the service was made is compared in seconds, and kept.
                    let modified = object.last_modified().map(|t| t.secs()).unwrap_or_default();
                    if modified < created_at.secs().max(horizon)
                        || !input_accepts(input, bucket, key)
                        || seen.since(bucket, key, modified)
                    {
                        continue;
                    }
                    let time = Timestamp::from_secs(modified).rfc3339();
                    let etag = match object.e_tag() {
                        Some(etag) => Some(etag.to_string()),
                        // Some stores (s3s-fs) list objects without their ETag.
                        None => s3
                            .head_object()
                            .bucket(bucket)
                            .key(key)
                            .send()
                            .await
                            .ok()
                            .and_then(|h| h.e_tag().map(str::to_string)),
                    }
                    .map(|e| e.trim_matches('"').to_string());
                    let size = object.size().and_then(|s| u64::try_from(s).ok());
                    let event = StorageEvent {
                        provider: PLATFORM_STORE.into(),
                        bucket: bucket.into(),
                        key: key.into(),
                        etag: etag.clone(),
                        version_id: None,
                        size,
                        time: Some(time.clone()),
                        name: Some("s3:ObjectCreated:Put".into()),
                    };
                    if seen.versions.contains(&event.object_version()) {
                        continue;
                    }
                    let raw =
                        minio_event("Put", bucket, key, etag.as_deref(), size, &time).to_string();
                    let job = storage_job(service, &event, &raw, Trigger::Reconciler);
                    if enqueue(db, jobs, job).await?.created {
                        tracing::info!(service = %name, %bucket, %key, "reconciler queued a job for an object without one");
                        made += 1;
                    }
                }
            }
        }
    }
    Ok(made)
}

/// The oldest modification time (in seconds) whose job the platform still remembers: the
/// object versions seen are forgotten with their jobs after the retention period, so an
/// object older than that may have had its job already and is left alone, not run again.
pub(super) fn memory_horizon(jobs: &Jobs) -> i64 {
    let retention = jobs.settings().retention.as_secs();
    // A tenth of a margin: a version is remembered from when its job was queued, a little
    // after it was written.
    let kept = i64::try_from(retention - retention / 10).unwrap_or(i64::MAX);
    Timestamp::now().secs().saturating_sub(kept)
}

/// When each service was made: objects older than their service were there before it and
/// start nothing.
pub(super) async fn creation_times(db: &Database) -> AppResult<HashMap<String, Timestamp>> {
    Ok(
        sqlx::query_as::<_, (String, Timestamp)>("SELECT name, created_at FROM services")
            .fetch_all(db.pool())
            .await?
            .into_iter()
            .collect(),
    )
}

/// The object versions a service has had jobs for, and when each key was last seen.
pub(super) struct Seen {
    pub(super) versions: HashSet<String>,
    /// `bucket/key` → latest `seen_at`.
    latest: HashMap<String, Timestamp>,
}

impl Seen {
    pub(super) async fn load(db: &Database, service: &str) -> AppResult<Self> {
        let rows: Vec<(String, Timestamp)> =
            sqlx::query_as("SELECT object, seen_at FROM job_inputs WHERE service = $1")
                .bind(service)
                .fetch_all(db.pool())
                .await?;
        let mut seen = Self {
            versions: HashSet::new(),
            latest: HashMap::new(),
        };
        for (object, at) in rows {
            if let Some((key, _)) = object.rsplit_once('#') {
                let latest = seen.latest.entry(key.to_string()).or_default();
                *latest = (*latest).max(at);
            }
            seen.versions.insert(object);
        }
        Ok(seen)
    }

    /// Whether the key was seen at least a second after it was last modified (modification
    /// times have whole seconds): its current version has a job, so the store need not be
    /// asked for its ETag again.
    fn since(&self, bucket: &str, key: &str, modified_secs: i64) -> bool {
        self.latest
            .get(&format!("{bucket}/{key}"))
            .is_some_and(|at| Timestamp::from_secs(modified_secs + 1) <= *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(path: &str, prefix: &[&str], suffix: &[&str]) -> StorageIo {
        StorageIo {
            storage_provider: PLATFORM_STORE.into(),
            path: path.into(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            suffix: suffix.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn inputs_match_their_folder_and_filters() {
        let plain = input("b/in", &[], &[]);
        assert!(
            plain.storage_provider == "minio.default" && input_accepts(&plain, "b", "in/x.jpg")
        );
        assert!(input_accepts(&plain, "b", "in/sub/x.jpg"));
        assert!(!input_accepts(&plain, "b", "input/x.jpg"));
        assert!(
            !input_accepts(&plain, "b", "in/"),
            "folder markers start nothing"
        );
        assert!(!input_accepts(&plain, "other", "in/x.jpg"));
        assert!(input_accepts(&input("b", &[], &[]), "b", "x.jpg"));
        let filtered = input("b/in", &["img-"], &[".jpg", ".png"]);
        assert!(input_accepts(&filtered, "b", "in/img-1.png"));
        assert!(!input_accepts(&filtered, "b", "in/img-1.txt"));
        assert!(!input_accepts(&filtered, "b", "in/doc-1.png"));
        let elsewhere = StorageIo {
            storage_provider: "s3.aws".into(),
            ..plain
        };
        assert!(!input_accepts(&elsewhere, "b", "in/x.jpg"));
    }
}
