//! The platform's buckets: who owns each, creating them for services, and removing them;
//! and the buckets of outputs in other S3 stores, made as upstream makes them.

use std::collections::{BTreeMap, BTreeSet};

use super::access::Caller;
use super::buckets::{Sharing, records};
use super::db::Database;
use super::store::{Store, refused, refused_in};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use model::service::mount::Mount;
use model::service::{Service, StorageIo};
use model::{AppError, AppResult, Timestamp};

/// The buckets of the platform's store a service reads from or writes to, its mount's too.
pub fn buckets_of(service: &Service) -> BTreeSet<String> {
    let mut buckets = buckets_in(service.input.iter().chain(&service.output));
    buckets.extend(mount_bucket(service));
    buckets
}

/// The platform-store bucket the service mounts, if any.
fn mount_bucket(service: &Service) -> Option<String> {
    Some(Mount::of(service)?.platform_bucket()?.to_string())
}

/// The platform-store buckets of some storage entries.
pub fn buckets_in<'a>(entries: impl IntoIterator<Item = &'a StorageIo>) -> BTreeSet<String> {
    entries
        .into_iter()
        .filter(|io| io.in_platform_store())
        .map(|io| io.bucket_and_folder().0.to_string())
        .collect()
}

/// Makes sure every bucket and folder the service uses exists: a bucket the caller owns is
/// reused, one owned by someone else is a 409, a missing one is created and recorded as made
/// by this service; one in the store without a record is adopted by the admin only (409 for
/// anyone else). External stores get the input folders' notification rules. Idempotent.
pub async fn prepare_for(
    db: &Database,
    s3: &Store,
    caller: &Caller,
    service: &Service,
    now: Timestamp,
) -> AppResult<()> {
    let mut new = 0;
    for bucket in buckets_of(service) {
        if records::owner_of(db, &bucket).await?.is_none() {
            new += 1;
        }
    }
    crate::quotas::check_new_buckets(db, &caller.id, new).await?;
    let mounted = mount_bucket(service);
    for bucket in buckets_of(service) {
        match records::owner_of(db, &bucket).await? {
            Some(owner) if owner == caller.id || caller.admin => {}
            Some(_) => {
                return Err(AppError::Conflict(format!(
                    "bucket {bucket:?} belongs to another user; choose another bucket name"
                )));
            }
            None => {
                let created = create_bucket(&s3.client, &bucket).await?;
                // A bucket made outside the platform (root keys, an external store's own) has
                // no owner yet: naming it must not make the caller its owner.
                if !created && !caller.admin {
                    return Err(AppError::Conflict(format!(
                        "bucket {bucket:?} exists in the store but was not created through the platform; only the admin may adopt it"
                    )));
                }
                // As upstream, a mounted bucket outlives the service: its files are the
                // user's, not only the service's outputs.
                let is_mounted = mounted.as_ref() == Some(&bucket);
                let created_by = (created && !is_mounted).then_some(service.name.as_str());
                let private = Sharing::default();
                records::insert(db, &bucket, &caller.id, created_by, &private, now).await?;
            }
        }
    }
    // The buckets a service made are shared like the service itself.
    let sharing = Sharing {
        visibility: service.visibility,
        allowed_users: service.allowed_users.clone(),
    };
    records::share_like_service(db, &service.name, &sharing).await?;
    // Folder markers make empty folders visible in every S3 browser.
    let mount = Mount::of(service)
        .filter(|m| m.platform_bucket().is_some())
        .map(|m| StorageIo {
            storage_provider: m.provider(),
            path: m.folder().to_string(),
            ..StorageIo::default()
        });
    for (list, entries) in [
        ("input", &service.input),
        ("output", &service.output),
        ("mount", &Vec::from_iter(mount)),
    ] {
        for (i, io) in entries.iter().enumerate() {
            if let (bucket, folder) = io.bucket_and_folder()
                && io.in_platform_store()
                && !folder.is_empty()
            {
                s3.client
                    .put_object()
                    .bucket(bucket)
                    .key(format!("{folder}/"))
                    .send()
                    .await
                    .map_err(|e| refused(&format!("{list}[{i}].path"), e))?;
            }
        }
    }
    super::store::subscribe(s3, service).await
}

/// Creates the bucket; false when it already existed in the store (made outside the platform).
pub async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> AppResult<bool> {
    match s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.code(),
                Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(refused_in(bucket, e)),
    }
}

/// Makes the buckets of the service's outputs in other S3 stores (`minio.<id>`, `s3.<id>`),
/// with the service's credentials for them, as upstream does: every job's upload to a bucket
/// that does not exist would fail. WebDAV and Onedata folders are made by the uploads.
pub async fn prepare_elsewhere(
    service: &Service,
    secrets: &BTreeMap<String, String>,
) -> AppResult<()> {
    let config = crate::jobs::executor::provider_config(service, secrets);
    for (i, output) in service.output.iter().enumerate() {
        let provider = &output.storage_provider;
        let is_s3 = matches!(provider.split('.').next(), Some("minio" | "s3"));
        if output.in_platform_store() || !is_s3 {
            continue;
        }
        let field = format!("output[{i}].path");
        let bucket = output.bucket_and_folder().0;
        let remote = supervisor::remote::Remote::connect(None, &config, provider)
            .map_err(|why| AppError::bad_request(field.clone(), why))?;
        let supervisor::remote::Remote::S3(client) = remote else {
            continue;
        };
        // Keys that may use a bucket need not be allowed to make one (a federation member's
        // keys to the origin's store, a MinIO user's).
        if client.head_bucket().bucket(bucket).send().await.is_ok() {
            continue;
        }
        create_bucket(&client, bucket).await.map_err(|e| {
            AppError::bad_request(
                field,
                format!("cannot make the bucket {bucket:?} in {provider}: {e}"),
            )
        })?;
    }
    Ok(())
}

/// Deletes every object of the bucket, then the bucket and its record.
pub async fn remove_bucket(db: &Database, s3: &aws_sdk_s3::Client, bucket: &str) -> AppResult<()> {
    let mut continuation = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(continuation)
            .send()
            .await;
        let page = match page {
            Ok(page) => page,
            // Deleted outside the platform: only its record is left to remove.
            Err(e) if e.code() == Some("NoSuchBucket") => break,
            Err(e) => return Err(refused_in(bucket, e)),
        };
        let keys: Vec<ObjectIdentifier> = page
            .contents()
            .iter()
            .filter_map(|o| {
                ObjectIdentifier::builder()
                    .set_key(o.key().map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        if !keys.is_empty() {
            let delete = Delete::builder()
                .set_objects(Some(keys))
                .quiet(true)
                .build()
                .map_err(|e| AppError::internal("delete request", e))?;
            s3.delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| refused_in(bucket, e))?;
        }
        continuation = page.next_continuation_token().map(str::to_string);
        if continuation.is_none() {
            break;
        }
    }
    match s3.delete_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("NoSuchBucket") => {}
        Err(e) => return Err(refused_in(bucket, e)),
    }
    records::delete(db, bucket).await
}
