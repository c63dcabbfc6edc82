//! Buckets and objects: the types the bucket browser shows and its server functions. Uploads
//! stream through `PUT /api/upload/{bucket}/{key}` (`crate::web::transfers`), not a server
//! function, so bodies never sit in memory whole.

use crate::AppError;
use leptos::prelude::*;
pub use model::buckets::*;

#[server(prefix = "/api", endpoint = "buckets/preview")]
pub async fn preview_object(bucket: String, key: String) -> Result<Preview, AppError> {
    use crate::web::context;
    use domain::{buckets, store_keys};
    let (state, caller) = (context::state(), context::require_caller().await?);
    buckets::authorize(
        &state.db,
        &state.s3.client,
        &caller,
        &bucket,
        buckets::Access::Use,
    )
    .await?;
    let signer =
        store_keys::link_signer(&state.db, state.jobs.storage(), &state.s3.client, &caller).await?;
    buckets::preview(&state.s3.client, &signer, &bucket, &key).await
}

/// The buckets the caller may use (every bucket for the admin) with their size.
#[server(prefix = "/api", endpoint = "buckets/list")]
pub async fn list_buckets() -> Result<Vec<BucketOverview>, AppError> {
    use crate::web::context;
    use domain::buckets;
    let caller = context::require_caller().await?;
    let state = context::state();
    let mut out = Vec::new();
    for record in buckets::visible_to(&state.db, &state.s3.client, &caller).await? {
        let (objects, size) = buckets::usage(&state.s3.client, &record.name).await?;
        let manageable = caller.manages(&record.owner);
        out.push(BucketOverview {
            name: record.name,
            owner: record.owner,
            service: record.service,
            visibility: record.visibility.as_str().to_string(),
            manageable,
            allowed_users: record.allowed_users,
            objects,
            size,
        });
    }
    Ok(out)
}

#[server(prefix = "/api", endpoint = "buckets/create")]
pub async fn create_bucket(name: String) -> Result<(), AppError> {
    use crate::web::context;
    use domain::buckets;
    let caller = context::require_caller().await?;
    let state = context::state();
    buckets::create(
        &state.db,
        &state.s3.client,
        &caller,
        &name,
        &buckets::Sharing::default(),
    )
    .await
}

/// Sets who may use a bucket the caller manages (one not made for a service).
#[server(prefix = "/api", endpoint = "buckets/sharing", input = leptos::server_fn::codec::Json)]
pub async fn share_bucket(
    name: String,
    visibility: String,
    allowed_users: Vec<String>,
) -> Result<(), AppError> {
    use crate::web::context;
    use domain::buckets;
    use model::service::Visibility;
    let caller = context::require_caller().await?;
    let state = context::state();
    let visibility = Visibility::parse(&visibility).ok_or_else(|| {
        AppError::bad_request("visibility", "must be private, restricted or public")
    })?;
    let sharing = buckets::Sharing {
        visibility,
        allowed_users,
    };
    buckets::share(&state.db, &state.s3.client, &caller, &name, &sharing).await?;
    state.s3.changed(&name);
    Ok(())
}

/// Empties and deletes a bucket.
#[server(prefix = "/api", endpoint = "buckets/delete")]
pub async fn delete_bucket(name: String) -> Result<(), AppError> {
    use crate::web::context;
    use domain::buckets;
    let caller = context::require_caller().await?;
    let state = context::state();
    buckets::remove(&state.db, &state.s3.client, &caller, &name).await
}

#[server(prefix = "/api", endpoint = "buckets/objects")]
pub async fn list_objects(
    bucket: String,
    prefix: String,
    next: Option<String>,
) -> Result<ObjectPage, AppError> {
    use crate::web::context;
    use domain::{buckets, jobs, services};
    let (state, caller) = (context::state(), context::require_caller().await?);
    buckets::authorize(
        &state.db,
        &state.s3.client,
        &caller,
        &bucket,
        buckets::Access::Use,
    )
    .await?;
    let mut page = buckets::list_objects(
        &state.s3.client,
        &bucket,
        &prefix,
        next,
        200,
        buckets::Listing::Folder,
    )
    .await?;
    // A file dropped here is `<prefix><name>`; the services that would run on it.
    let probe = format!("{prefix}file");
    page.input_of = services::list_visible(&state.db, &state.services, &caller)
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
    use crate::web::context;
    use domain::buckets;
    let (state, caller) = (context::state(), context::require_caller().await?);
    buckets::authorize(
        &state.db,
        &state.s3.client,
        &caller,
        &bucket,
        buckets::Access::Use,
    )
    .await?;
    buckets::create_folder(&state.s3.client, &bucket, &folder).await?;
    state.s3.changed(&bucket);
    Ok(())
}

/// Deletes files and whole folders; returns how many objects went.
#[server(prefix = "/api", endpoint = "buckets/delete-objects", input = leptos::server_fn::codec::Json)]
pub async fn delete_objects(
    bucket: String,
    keys: Vec<String>,
    folders: Vec<String>,
) -> Result<u64, AppError> {
    use crate::web::context;
    use domain::buckets;
    let (state, caller) = (context::state(), context::require_caller().await?);
    let record = buckets::authorize(
        &state.db,
        &state.s3.client,
        &caller,
        &bucket,
        buckets::Access::Use,
    )
    .await?;
    let deleted = buckets::delete(&state.s3.client, &record, &caller, &keys, &folders).await?;
    state.s3.changed(&bucket);
    Ok(deleted)
}

/// A download link valid for `expires_in` seconds (1 to 604800).
#[server(prefix = "/api", endpoint = "buckets/share")]
pub async fn share_link(bucket: String, key: String, expires_in: u64) -> Result<String, AppError> {
    use crate::web::context;
    use domain::{buckets, store_keys};
    let (state, caller) = (context::state(), context::require_caller().await?);
    buckets::authorize(
        &state.db,
        &state.s3.client,
        &caller,
        &bucket,
        buckets::Access::Use,
    )
    .await?;
    buckets::check_key("key", &key)?;
    let signer =
        store_keys::link_signer(&state.db, state.jobs.storage(), &state.s3.client, &caller).await?;
    buckets::share_link(
        &signer,
        &bucket,
        &key,
        std::time::Duration::from_secs(expires_in),
    )
    .await
}
