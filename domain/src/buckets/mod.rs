//! Buckets and objects in the platform's store: listing by folder, folders, deletion,
//! presigned links and streamed uploads.

use std::time::Duration;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::access::Caller;
use super::db::Database;
use super::jobs::events;
use super::storage;
use super::store::{refused, refused_in, unavailable};
use model::buckets::{BucketSummary, ObjectDetails, ObjectEntry, ObjectPage, Preview};
use model::service::validate;
use model::usage::BucketUse;
use model::{AppError, AppResult, Timestamp};

pub mod records;

pub use records::{BucketRecord, Sharing, record};

/// Objects per listing page at most.
pub const PAGE_LIMIT: i32 = 1000;
/// Uploads are sent to the store in parts of this size; memory per upload stays near it.
pub const PART_SIZE: usize = 16 * 1024 * 1024;

/// Every bucket the platform's store holds, sorted by name.
pub async fn list(s3: &aws_sdk_s3::Client) -> AppResult<Vec<BucketSummary>> {
    let out = s3
        .list_buckets()
        .send()
        .await
        .map_err(|e| refused("buckets", e))?;
    let mut buckets: Vec<BucketSummary> = out
        .buckets()
        .iter()
        .filter_map(|b| {
            Some(BucketSummary {
                name: b.name()?.to_string(),
                created: b.creation_date().map(|d| d.to_string()),
            })
        })
        .collect();
    buckets.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(buckets)
}

/// The buckets the caller may use: their own, those shared with them, public ones; every
/// bucket for the admin.
pub async fn visible_to(
    db: &Database,
    s3: &aws_sdk_s3::Client,
    caller: &Caller,
) -> AppResult<Vec<BucketRecord>> {
    let mut records = Vec::new();
    for bucket in list(s3).await? {
        let record = record(db, &bucket.name).await?;
        if record.usable_by(caller) {
            records.push(record);
        }
    }
    Ok(records)
}

/// What a caller wants to do with a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// List, read, upload, share links: whoever the visibility admits. Replacing and deleting
    /// objects also needs [`may_replace`].
    Use,
    /// Change visibility, delete the bucket: the owner and the admin.
    Manage,
}

/// The bucket's record if the caller may do `access` on it: 404 when it does not exist, 403
/// when it is someone else's and not shared with them.
pub async fn authorize(
    db: &Database,
    s3: &aws_sdk_s3::Client,
    caller: &Caller,
    bucket: &str,
    access: Access,
) -> AppResult<BucketRecord> {
    check_bucket(bucket)?;
    if let Err(e) = s3.head_bucket().bucket(bucket).send().await {
        return Err(match e.as_service_error() {
            Some(missing) if missing.is_not_found() => {
                AppError::NotFound(format!("no bucket named {bucket:?}"))
            }
            _ => refused_in(bucket, e),
        });
    }
    let record = record(db, bucket).await?;
    let allowed = match access {
        Access::Use => record.usable_by(caller),
        Access::Manage => caller.manages(&record.owner),
    };
    if !allowed {
        return Err(AppError::Forbidden(match access {
            Access::Use => {
                format!("bucket {bucket:?} belongs to another user and is not shared with you")
            }
            Access::Manage => {
                format!("only the owner of bucket {bucket:?} may change or delete it")
            }
        }));
    }
    Ok(record)
}

/// Creates a bucket owned by the caller; `bucket/folder` creates the folder too. 409 when
/// the bucket exists.
pub async fn create(
    db: &Database,
    s3: &aws_sdk_s3::Client,
    caller: &Caller,
    name: &str,
    sharing: &Sharing,
) -> AppResult<()> {
    let name = name.trim_matches('/');
    let (bucket, folder) = name.split_once('/').unwrap_or((name, ""));
    validate::bucket_name(bucket).map_err(|m| AppError::bad_request("bucket_name", m))?;
    crate::quotas::check_new_buckets(db, &caller.id, 1).await?;
    if records::owner_of(db, bucket).await?.is_some() || !storage::create_bucket(s3, bucket).await?
    {
        return Err(AppError::Conflict(format!(
            "bucket {bucket:?} already exists"
        )));
    }
    if !records::insert(db, bucket, &caller.id, None, sharing, Timestamp::now()).await? {
        return Err(AppError::Conflict(format!(
            "bucket {bucket:?} already exists"
        )));
    }
    if !folder.is_empty() {
        create_folder(s3, bucket, folder).await?;
    }
    Ok(())
}

/// Sets who may use a bucket the caller manages. Buckets made for services are shared like
/// their service, so they are changed through it.
pub async fn share(
    db: &Database,
    s3: &aws_sdk_s3::Client,
    caller: &Caller,
    bucket: &str,
    sharing: &Sharing,
) -> AppResult<()> {
    let record = authorize(db, s3, caller, bucket, Access::Manage).await?;
    if record.service.is_some() {
        return Err(AppError::Forbidden(format!(
            "bucket {bucket:?} belongs to a service; change the service instead"
        )));
    }
    records::set_sharing(db, bucket, &record.owner, sharing, Timestamp::now()).await
}

/// Empties and deletes a bucket the caller owns.
pub async fn remove(
    db: &Database,
    s3: &aws_sdk_s3::Client,
    caller: &Caller,
    bucket: &str,
) -> AppResult<()> {
    authorize(db, s3, caller, bucket, Access::Manage).await?;
    storage::remove_bucket(db, s3, bucket).await
}

/// The space used by the buckets the caller may use (of those named in `only`, when given),
/// largest first. A bucket the store will not list is left out (and logged), not the rest.
pub async fn space_used(
    db: &Database,
    s3: &aws_sdk_s3::Client,
    caller: &Caller,
    only: Option<&[String]>,
) -> AppResult<Vec<BucketUse>> {
    let mut used = Vec::new();
    for record in visible_to(db, s3, caller).await? {
        if only.is_some_and(|names| !names.contains(&record.name)) {
            continue;
        }
        let (objects, bytes) = match usage(s3, &record.name).await {
            Ok(usage) => usage,
            Err(err) => {
                tracing::warn!(bucket = %record.name, %err, "cannot add up a bucket's objects");
                continue;
            }
        };
        used.push(BucketUse {
            bucket: record.name,
            objects,
            bytes,
        });
    }
    used.sort_by_key(|b| std::cmp::Reverse(b.bytes));
    Ok(used)
}

/// How many objects a bucket holds and their total size (folder markers excluded).
pub async fn usage(s3: &aws_sdk_s3::Client, bucket: &str) -> AppResult<(i64, i64)> {
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    let (mut count, mut size) = (0, 0);
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| refused_in(bucket, e))?;
        for object in page.contents() {
            if object.key().is_some_and(|k| !k.ends_with('/')) {
                count += 1;
                size += object.size().unwrap_or_default();
            }
        }
    }
    Ok((count, size))
}

/// [`usage`] of several buckets together.
pub async fn total_usage(s3: &aws_sdk_s3::Client, buckets: &[String]) -> AppResult<(i64, i64)> {
    let (mut count, mut size) = (0, 0);
    for bucket in buckets {
        let (objects, bytes) = usage(s3, bucket).await?;
        count += objects;
        size += bytes;
    }
    Ok((count, size))
}

fn check_bucket(bucket: &str) -> AppResult<()> {
    validate::bucket_name(bucket).map_err(|m| AppError::bad_request("bucket", m))
}

/// Every object key a caller names passes the store's own check before it is sent with the
/// platform's keys: a `..` segment would reach another bucket.
pub fn check_key(field: &str, key: &str) -> AppResult<()> {
    embedded_s3::object_key(key).map_err(|m| AppError::bad_request(field, m))
}

/// No key holds a control character (the store's XML answer could not carry one either), so
/// a prefix or page token with one is a mistake.
fn listing_text(field: &str, text: &str) -> AppResult<()> {
    if text.len() > 1024 || text.chars().any(char::is_control) {
        return Err(AppError::bad_request(
            field,
            "must be at most 1024 bytes without control characters",
        ));
    }
    Ok(())
}

/// What a listing page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// The folder's files, and its sub-folders as folders (the dashboard's browser).
    Folder,
    /// Every object below the prefix, at any depth (OSCAR's bucket API).
    AllBelow,
}

/// One page of a folder: its sub-folders and objects, and where the next page starts.
pub async fn list_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    continuation: Option<String>,
    limit: i32,
    listing: Listing,
) -> AppResult<ObjectPage> {
    check_bucket(bucket)?;
    listing_text("prefix", prefix)?;
    listing_text("page", continuation.as_deref().unwrap_or_default())?;
    let page = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .set_delimiter((listing == Listing::Folder).then(|| "/".to_string()))
        .max_keys(limit.clamp(1, PAGE_LIMIT))
        .set_continuation_token(continuation.filter(|c| !c.is_empty()))
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(se) if se.is_no_such_bucket() => {
                AppError::NotFound(format!("no bucket named {bucket:?}"))
            }
            _ => refused_in(bucket, e),
        })?;
    Ok(ObjectPage {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        folders: page
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix().map(str::to_string))
            .collect(),
        objects: page
            .contents()
            .iter()
            // Folder markers are folders, not files.
            .filter(|o| o.key().is_some_and(|k| !k.ends_with('/')))
            .map(|o| ObjectEntry {
                key: o.key().unwrap_or_default().to_string(),
                size: o.size().unwrap_or_default(),
                modified: o.last_modified().map(crate::store::time_of),
            })
            .collect(),
        next: page.next_continuation_token().map(str::to_string),
        // Filled in by callers that know the services.
        input_of: Vec::new(),
    })
}

/// Makes an empty folder visible (a `folder/` marker object).
pub async fn create_folder(s3: &aws_sdk_s3::Client, bucket: &str, folder: &str) -> AppResult<()> {
    check_bucket(bucket)?;
    let folder = folder.trim_end_matches('/');
    check_key("folder", folder)?;
    s3.put_object()
        .bucket(bucket)
        .key(format!("{folder}/"))
        .send()
        .await
        .map_err(|e| refused("folder", e))?;
    Ok(())
}

/// A user the bucket is shared with replaces or deletes only what they uploaded, as named by
/// the object's `oscar-uploader` (written by the platform for its own uploads and by the
/// embedded store for users' keys, whatever the client sent); the owner and the admin
/// anything. Folder markers hold nothing anyone uploaded. The embedded store applies the same
/// rule to users' keys (`embedded_s3::Reach`).
pub async fn may_replace(
    s3: &aws_sdk_s3::Client,
    record: &BucketRecord,
    caller: &Caller,
    key: &str,
) -> AppResult<()> {
    if caller.manages(&record.owner) || key.ends_with('/') {
        return Ok(());
    }
    let bucket = &record.name;
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(head)
            if head
                .metadata()
                .and_then(|m| m.get(events::UPLOADER_METADATA))
                == Some(&caller.id) =>
        {
            Ok(())
        }
        Ok(_) => Err(AppError::Forbidden(format!(
            "{key:?} in bucket {bucket:?} was uploaded by someone else: only its uploader and the bucket's owner may replace or delete it"
        ))),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(()),
        Err(e) => Err(refused("key", e)),
    }
}

/// Deletes objects and whole folders (everything under each `prefix/`) that the caller may
/// delete (see [`may_replace`]); nothing when one of them is not. Returns how many objects
/// went.
pub async fn delete(
    s3: &aws_sdk_s3::Client,
    record: &BucketRecord,
    caller: &Caller,
    keys: &[String],
    folders: &[String],
) -> AppResult<u64> {
    let bucket = record.name.as_str();
    check_bucket(bucket)?;
    for key in keys {
        check_key("keys", key)?;
    }
    for folder in folders {
        check_key("folders", folder)?;
    }
    let mut doomed: Vec<String> = keys.to_vec();
    for folder in folders {
        let prefix = format!("{}/", folder.trim_end_matches('/'));
        doomed.extend(keys_under(s3, bucket, &prefix).await?);
        doomed.push(prefix);
    }
    for key in &doomed {
        may_replace(s3, record, caller, key).await?;
    }
    let mut deleted = 0;
    for batch in doomed.chunks(1000) {
        let objects = batch
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AppError::internal("delete request", e))?;
        let request = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| AppError::internal("delete request", e))?;
        let out = s3
            .delete_objects()
            .bucket(bucket)
            .delete(request)
            .send()
            .await
            .map_err(|e| refused_in(bucket, e))?;
        deleted += (batch.len() - out.errors().len()) as u64;
    }
    Ok(deleted)
}

/// Every key under a prefix (all pages).
pub async fn keys_under(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> AppResult<Vec<String>> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| refused_in(bucket, e))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    Ok(keys)
}

/// How a browser opening a share link gets the object: shown, as a type it displays inertly
/// (raster images, PDF, plain text), or else saved as a file. Whatever type the uploader gave,
/// HTML, SVG or XML never open as a page on the store's origin (same site as the dashboard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Image(&'static str),
    /// An image that is also a page (it may hold script): a download from a link, shown only
    /// where the browser never runs it, as an `<img>`.
    Svg,
    Pdf,
    Text,
    Download,
}

impl Shown {
    pub fn of(key: &str) -> Self {
        let extension = key
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        match extension.as_str() {
            "png" => Self::Image("image/png"),
            "jpg" | "jpeg" => Self::Image("image/jpeg"),
            "gif" => Self::Image("image/gif"),
            "webp" => Self::Image("image/webp"),
            "bmp" => Self::Image("image/bmp"),
            "svg" => Self::Svg,
            "pdf" => Self::Pdf,
            "txt" | "json" | "csv" | "tsv" | "log" | "md" | "yaml" | "yml" | "xml" | "sh"
            | "py" | "out" | "err" => Self::Text,
            _ => Self::Download,
        }
    }
}

/// A link anyone can download the object with until it expires (1 s to 7 days), signed by
/// `signer` ([`super::store_keys::link_signer`]). It pins the type the store answers with, or makes
/// the object a download ([`Shown`]).
pub async fn share_link(
    signer: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    expires: Duration,
) -> AppResult<String> {
    let config = presigning(bucket, key, expires)?;
    let request = signer.get_object().bucket(bucket).key(key);
    let request = match Shown::of(key) {
        Shown::Image(content_type) => request.response_content_type(content_type),
        Shown::Pdf => request.response_content_type("application/pdf"),
        Shown::Text => request.response_content_type("text/plain; charset=utf-8"),
        Shown::Svg | Shown::Download => {
            let name = key.rsplit('/').next().unwrap_or(key);
            request.response_content_disposition(format!(
                "attachment; filename*=UTF-8''{}",
                model::url::percent_encode(name, b"")
            ))
        }
    };
    let request = request
        .presigned(config)
        .await
        .map_err(|e| AppError::internal("presign", DisplayErrorContext(e)))?;
    Ok(request.uri().to_string())
}

/// A link to PUT the object with until it expires (1 s to 7 days).
pub async fn upload_link(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    expires: Duration,
    content_type: Option<&str>,
) -> AppResult<String> {
    let config = presigning(bucket, key, expires)?;
    let request = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .set_content_type(content_type.filter(|c| !c.is_empty()).map(str::to_string))
        .presigned(config)
        .await
        .map_err(|e| AppError::internal("presign", DisplayErrorContext(e)))?;
    Ok(request.uri().to_string())
}

fn presigning(bucket: &str, key: &str, expires: Duration) -> AppResult<PresigningConfig> {
    check_bucket(bucket)?;
    check_key("object_key", key)?;
    if expires.is_zero() || expires > Duration::from_secs(604_800) {
        return Err(AppError::bad_request(
            "expires_in",
            "must be between 1 and 604800 seconds (7 days)",
        ));
    }
    PresigningConfig::expires_in(expires).map_err(|e| AppError::internal("presign", e))
}

/// Text previews show at most this much of a file.
const PREVIEW_BYTES: i64 = 64 * 1024;
/// How long preview and download links stay valid.
const PREVIEW_LINK: Duration = Duration::from_secs(900);

/// An object to stream to a user; 404 when it is not there.
pub async fn open(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> AppResult<aws_sdk_s3::operation::get_object::GetObjectOutput> {
    check_bucket(bucket)?;
    check_key("key", key)?;
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| not_read(bucket, key, e))
}

/// A read the store refused: 404 when the object is not there.
fn not_read(
    bucket: &str,
    key: &str,
    err: aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::get_object::GetObjectError>,
) -> AppError {
    match err.as_service_error() {
        Some(se) if se.is_no_such_key() => {
            AppError::NotFound(format!("no object {key:?} in {bucket:?}"))
        }
        _ => refused("key", err),
    }
}

/// What the store says of an object: type, size, ETag, time, uploader and user metadata.
pub async fn details(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> AppResult<ObjectDetails> {
    check_bucket(bucket)?;
    check_key("key", key)?;
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(se) if se.is_not_found() => {
                AppError::NotFound(format!("no object {key:?} in {bucket:?}"))
            }
            _ => refused("key", e),
        })?;
    let mut metadata: Vec<(String, String)> = head
        .metadata()
        .into_iter()
        .flatten()
        .filter(|(name, _)| name.as_str() != events::UPLOADER_METADATA)
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    metadata.sort();
    Ok(ObjectDetails {
        size: head.content_length().unwrap_or_default(),
        content_type: head.content_type().map(str::to_string),
        etag: head.e_tag().map(|e| e.trim_matches('"').to_string()),
        modified: head.last_modified().map(crate::store::time_of),
        uploader: head
            .metadata()
            .and_then(|m| m.get(events::UPLOADER_METADATA))
            .cloned(),
        metadata,
    })
}

/// What the browser can show of an object, chosen by its name, with its details; links are
/// signed by `signer`.
pub async fn preview(
    s3: &aws_sdk_s3::Client,
    signer: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> AppResult<Preview> {
    // A folder marker holds nothing to describe (and the embedded store cannot HEAD one).
    let details = match key.ends_with('/') {
        true => ObjectDetails::default(),
        false => details(s3, bucket, key).await?,
    };
    let download_url = share_link(signer, bucket, key, PREVIEW_LINK).await?;
    let mut preview = Preview {
        details,
        image_url: None,
        pdf_url: None,
        text: None,
        truncated: false,
        download_url: download_url.clone(),
    };
    match Shown::of(key) {
        Shown::Image(_) | Shown::Svg => preview.image_url = Some(download_url),
        Shown::Pdf => preview.pdf_url = Some(download_url),
        Shown::Text => {
            let object = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .range(format!("bytes=0-{}", PREVIEW_BYTES - 1))
                .send()
                .await;
            // No range of an empty object exists: S3 answers 416 where the file is just empty.
            if let Err(e) = &object
                && e.as_service_error().and_then(|se| se.meta().code()) == Some("InvalidRange")
            {
                preview.text = Some(String::new());
                return Ok(preview);
            }
            let object = object.map_err(|e| not_read(bucket, key, e))?;
            let total = object
                .content_range()
                .and_then(|r| r.rsplit('/').next())
                .and_then(|n| n.parse::<i64>().ok());
            let bytes = object.body.collect().await.map_err(unavailable)?.to_vec();
            preview.truncated =
                total.is_some_and(|t| t > bytes.len() as i64) || bytes.len() as i64 > PREVIEW_BYTES;
            let shown = &bytes[..bytes.len().min(PREVIEW_BYTES as usize)];
            preview.text = Some(String::from_utf8_lossy(shown).into_owned());
        }
        Shown::Download => {}
    }
    Ok(preview)
}

/// The most one upload may bring: the platform's upload limit, or less when the bucket
/// owner's storage quota leaves less room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowance {
    Limit(u64),
    Quota { owner: String, room: u64 },
}

impl Allowance {
    /// For an upload into `bucket` (owned by `owner`) under the platform's `limit`.
    pub async fn of(
        db: &Database,
        s3: &aws_sdk_s3::Client,
        owner: &str,
        limit: u64,
    ) -> AppResult<Self> {
        Ok(match crate::quotas::storage_room(db, s3, owner).await? {
            Some(room) if room < limit => Self::Quota {
                owner: owner.to_string(),
                room,
            },
            _ => Self::Limit(limit),
        })
    }

    fn bytes(&self) -> u64 {
        match self {
            Self::Limit(bytes) | Self::Quota { room: bytes, .. } => *bytes,
        }
    }

    fn refusal(&self) -> AppError {
        match self {
            Self::Limit(limit) => AppError::bad_request(
                "file",
                format!("is larger than the upload limit of {limit} bytes"),
            ),
            Self::Quota { owner, room } => crate::quotas::over_storage(owner, *room),
        }
    }
}

/// Streams `body` into `bucket/key`: small bodies in one PutObject, larger ones as a
/// multipart upload in which one part travels to the store while the next is received, so
/// memory stays near two parts whatever the size. Bodies over the `allowance` (the upload
/// limit, or the room the bucket owner's quota leaves) are refused and what was sent is
/// discarded. The object's metadata names the uploader, so the job it starts is theirs
/// (`events::object_created`); `content_type` is kept as the type it was stored with. Returns
/// the size.
pub async fn upload<S, E>(
    s3: &aws_sdk_s3::Client,
    uploader: &Caller,
    bucket: &str,
    key: &str,
    content_type: Option<&str>,
    mut body: S,
    allowance: &Allowance,
) -> AppResult<events::Version>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    check_bucket(bucket)?;
    check_key("key", key)?;
    let content_type = content_type.map(str::trim).filter(|t| !t.is_empty());
    let mut part = Vec::with_capacity(PART_SIZE);
    let mut total: u64 = 0;
    let mut multipart: Option<Multipart> = None;
    let received: AppResult<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| AppError::bad_request("file", format!("upload interrupted: {e}")))?;
            total += chunk.len() as u64;
            if total > allowance.bytes() {
                return Err(allowance.refusal());
            }
            part.extend_from_slice(&chunk);
            if part.len() >= PART_SIZE {
                let full = std::mem::replace(&mut part, Vec::with_capacity(PART_SIZE));
                if multipart.is_none() {
                    multipart =
                        Some(Multipart::start(s3, uploader, bucket, key, content_type).await?);
                }
                multipart.as_mut().expect("started").send(full).await?;
            }
        }
        Ok(())
    }
    .await;
    match (received, multipart) {
        (Err(err), Some(multipart)) => {
            multipart.abort().await;
            Err(err)
        }
        (Err(err), None) => Err(err),
        (Ok(()), None) => {
            let put = s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .metadata(events::UPLOADER_METADATA, &uploader.id)
                .set_content_type(content_type.map(str::to_string))
                .body(ByteStream::from(part))
                .send()
                .await
                .map_err(|e| refused("key", e))?;
            Ok(events::Version::new(put.e_tag(), put.version_id(), total))
        }
        (Ok(()), Some(mut multipart)) => {
            let sent = async {
                if !part.is_empty() {
                    multipart.send(part).await?;
                }
                multipart.wait().await
            }
            .await;
            match sent {
                Ok(()) => multipart.complete(total).await,
                Err(err) => {
                    multipart.abort().await;
                    Err(err)
                }
            }
        }
    }
}

/// A multipart upload with at most one part on its way to the store.
struct Multipart {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
    in_flight: Option<tokio::task::JoinHandle<AppResult<CompletedPart>>>,
}

impl Multipart {
    async fn start(
        s3: &aws_sdk_s3::Client,
        uploader: &Caller,
        bucket: &str,
        key: &str,
        content_type: Option<&str>,
    ) -> AppResult<Self> {
        let started = s3
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .metadata(events::UPLOADER_METADATA, &uploader.id)
            .set_content_type(content_type.map(str::to_string))
            .send()
            .await
            .map_err(|e| refused("key", e))?;
        Ok(Self {
            s3: s3.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: started.upload_id().unwrap_or_default().to_string(),
            parts: Vec::new(),
            in_flight: None,
        })
    }

    /// Waits for the part on its way, then sends this one in the background.
    async fn send(&mut self, bytes: Vec<u8>) -> AppResult<()> {
        self.wait().await?;
        let number = self.parts.len() as i32 + 1;
        let request = self
            .s3
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(bytes));
        self.in_flight = Some(tokio::spawn(async move {
            let sent = request.send().await.map_err(|e| refused("key", e))?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(sent.e_tag().map(str::to_string))
                .build())
        }));
        Ok(())
    }

    async fn wait(&mut self) -> AppResult<()> {
        if let Some(handle) = self.in_flight.take() {
            let part = handle
                .await
                .map_err(|e| AppError::internal("part upload", e))??;
            self.parts.push(part);
        }
        Ok(())
    }

    /// A refused completion aborts the upload too.
    async fn complete(mut self, size: u64) -> AppResult<events::Version> {
        let completed = self
            .s3
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build(),
            )
            .send()
            .await;
        match completed {
            Ok(done) => Ok(events::Version::new(done.e_tag(), done.version_id(), size)),
            Err(err) => {
                let err = refused("key", err);
                self.abort().await;
                Err(err)
            }
        }
    }

    /// Leaves no orphaned parts in the store.
    async fn abort(mut self) {
        if let Some(handle) = self.in_flight.take() {
            handle.abort();
        }
        let _ = self
            .s3
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
    }
}
