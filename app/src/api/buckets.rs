//! Buckets and objects: the types the bucket browser shows and its server functions. Uploads
//! stream through `PUT /api/upload/{bucket}/{key}` (`crate::server::transfers`), not a server
//! function, so bodies never sit in memory whole.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketSummary {
    pub name: String,
    /// Creation time as the store reports it (RFC 3339).
    pub created: Option<String>,
}

/// A bucket as the Buckets page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketOverview {
    pub name: String,
    pub owner: String,
    /// The service whose creation made it.
    pub service: Option<String>,
    pub visibility: String,
    pub objects: i64,
    pub size: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    pub key: String,
    pub size: i64,
    /// Last modified, milliseconds since the epoch.
    pub modified: Option<i64>,
}

/// One page of a folder's listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ObjectPage {
    pub bucket: String,
    /// The folder listed (`""` for the bucket's root, else ending in `/`).
    pub prefix: String,
    /// Sub-folders, as full prefixes ending in `/`.
    pub folders: Vec<String>,
    pub objects: Vec<ObjectEntry>,
    /// Continuation token of the next page.
    pub next: Option<String>,
    /// Services whose input is this folder: each file uploaded here starts a job of each.
    pub input_of: Vec<String>,
}

/// What the browser can show of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// A short-lived link for images (shown inline).
    pub image_url: Option<String>,
    /// A short-lived link for PDFs (shown in a frame).
    pub pdf_url: Option<String>,
    /// The first part of text files (JSON, CSV, logs, …).
    pub text: Option<String>,
    /// Whether `text` is only the first part.
    pub truncated: bool,
    /// A short-lived download link, always.
    pub download_url: String,
}

#[server(prefix = "/api", endpoint = "buckets/preview")]
pub async fn preview_object(bucket: String, key: String) -> Result<Preview, AppError> {
    use crate::server::{buckets, context, store_keys};
    let (state, caller) = (context::state(), context::require_caller().await?);
    buckets::authorize(&state.db, &state.s3, &caller, &bucket, buckets::Access::Use).await?;
    let signer =
        store_keys::link_signer(&state.db, state.jobs.storage(), &state.s3, &caller).await?;
    buckets::preview(&state.s3, &signer, &bucket, &key).await
}

/// The buckets the caller may use (every bucket for the admin) with their size.
#[server(prefix = "/api", endpoint = "buckets/list")]
pub async fn list_buckets() -> Result<Vec<BucketOverview>, AppError> {
    use crate::server::{buckets, context};
    let caller = context::require_caller().await?;
    let state = context::state();
    let mut out = Vec::new();
    for record in buckets::visible_to(&state.db, &state.s3, &caller).await? {
        let (objects, size) = buckets::usage(&state.s3, &record.name).await?;
        out.push(BucketOverview {
            name: record.name,
            owner: record.owner,
            service: record.service,
            visibility: record.visibility,
            objects,
            size,
        });
    }
    Ok(out)
}

#[server(prefix = "/api", endpoint = "buckets/create")]
pub async fn create_bucket(name: String) -> Result<(), AppError> {
    use crate::server::{buckets, context};
    let caller = context::require_caller().await?;
    let state = context::state();
    buckets::create(
        &state.db,
        &state.s3,
        &caller,
        &name,
        Default::default(),
        &[],
    )
    .await
}

/// Empties and deletes a bucket.
#[server(prefix = "/api", endpoint = "buckets/delete")]
pub async fn delete_bucket(name: String) -> Result<(), AppError> {
    use crate::server::{buckets, context};
    let caller = context::require_caller().await?;
    let state = context::state();
    buckets::remove(&state.db, &state.s3, &caller, &name).await
}

#[server(prefix = "/api", endpoint = "buckets/objects")]
pub async fn list_objects(
    bucket: String,
    prefix: String,
    next: Option<String>,
) -> Result<ObjectPage, AppError> {
    use crate::server::{buckets, context, jobs, services};
    let (state, caller) = (context::state(), context::require_caller().await?);
    buckets::authorize(&state.db, &state.s3, &caller, &bucket, buckets::Access::Use).await?;
    let mut page = buckets::list_objects(
        &state.s3,
        &bucket,
        &prefix,
        next,
        200,
        buckets::Listing::Folder,
    )
    .await?;
    // A file dropped here is `<prefix><name>`; the services that would run on it.
    let probe = format!("{prefix}file");
    page.input_of = services::list_visible(&state.db, &caller)
        .await?
        .into_iter()
        .filter(|s| {
            s.input
                .iter()
                .any(|i| jobs::events::input_folder_holds(i, &bucket, &probe))
        })
        .map(|s| s.name)
        .collect();
    Ok(page)
}

#[server(prefix = "/api", endpoint = "buckets/folder")]
pub async fn create_folder(bucket: String, folder: String) -> Result<(), AppError> {
    use crate::server::{buckets, context};
    let (state, caller) = (context::state(), context::require_caller().await?);
    buckets::authorize(&state.db, &state.s3, &caller, &bucket, buckets::Access::Use).await?;
    buckets::create_folder(&state.s3, &bucket, &folder).await
}

/// Deletes files and whole folders; returns how many objects went.
#[server(prefix = "/api", endpoint = "buckets/delete-objects", input = leptos::server_fn::codec::Json)]
pub async fn delete_objects(
    bucket: String,
    keys: Vec<String>,
    folders: Vec<String>,
) -> Result<u64, AppError> {
    use crate::server::{buckets, context};
    let (state, caller) = (context::state(), context::require_caller().await?);
    let record =
        buckets::authorize(&state.db, &state.s3, &caller, &bucket, buckets::Access::Use).await?;
    buckets::delete(&state.s3, &record, &caller, &keys, &folders).await
}

/// A download link valid for `expires_in` seconds (1 to 604800).
#[server(prefix = "/api", endpoint = "buckets/share")]
pub async fn share_link(bucket: String, key: String, expires_in: u64) -> Result<String, AppError> {
    use crate::server::{buckets, context, store_keys};
    let (state, caller) = (context::state(), context::require_caller().await?);
    buckets::authorize(&state.db, &state.s3, &caller, &bucket, buckets::Access::Use).await?;
    buckets::check_key("key", &key)?;
    let signer =
        store_keys::link_signer(&state.db, state.jobs.storage(), &state.s3, &caller).await?;
    buckets::share_link(
        &signer,
        &bucket,
        &key,
        std::time::Duration::from_secs(expires_in),
    )
    .await
}
