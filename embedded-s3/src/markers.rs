//! Folder markers (`folder/` keys, as S3 consoles and the platform make them). s3s-fs keeps a
//! marker only as a directory, lists directories only through the files in them, and leaves a
//! directory behind when its last file goes: an empty folder someone made would not list,
//! and one emptied by deletions would. So markers are also recorded here, one file each under
//! `<root>/.folders/<bucket>/` (no bucket can have that name) holding the key, and listed as
//! S3 lists them: a common prefix of `/`-delimited listings, an empty object in the others.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use s3s::dto::{CommonPrefix, ListObjectsV2Output, Object, Timestamp};
use sha2::{Digest, Sha256};

const RECORDS: &str = ".folders";

fn bucket_dir(root: &Path, bucket: &str) -> PathBuf {
    root.join(RECORDS).join(bucket)
}

/// A store written before markers were recorded has them only as directories: the first
/// start with records takes every empty directory in a bucket for a marker (as it most often
/// is, a folder someone made), once. Returns how many it recorded.
pub(crate) fn adopt_empty_directories(root: &Path) -> std::io::Result<usize> {
    if root.join(RECORDS).exists() {
        return Ok(0);
    }
    let mut adopted = Vec::new();
    for bucket in std::fs::read_dir(root)? {
        let bucket = bucket?;
        let name = bucket.file_name().to_string_lossy().into_owned();
        if bucket.file_type()?.is_dir() && s3s::path::check_bucket_name(&name) {
            empty_directories(&bucket.path(), "", &mut |key| {
                adopted.push((name.clone(), key))
            })?;
        }
    }
    std::fs::create_dir_all(root.join(RECORDS))?;
    for (bucket, key) in &adopted {
        std::fs::create_dir_all(bucket_dir(root, bucket))?;
        std::fs::write(record_path(root, bucket, key), key)?;
    }
    Ok(adopted.len())
}

/// Calls `found` with the key (`a/b/`) of each empty directory under `dir`.
fn empty_directories(dir: &Path, key: &str, found: &mut impl FnMut(String)) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let inner = format!("{key}{}/", entry.file_name().to_string_lossy());
        if std::fs::read_dir(entry.path())?.next().is_none() {
            found(inner);
        } else {
            empty_directories(&entry.path(), &inner, found)?;
        }
    }
    Ok(())
}

/// Named by the key's hash: keys may be longer than a file name.
fn record_path(root: &Path, bucket: &str, key: &str) -> PathBuf {
    let hash: String = Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    bucket_dir(root, bucket).join(hash)
}

pub(crate) async fn record(root: &Path, bucket: &str, key: &str) -> std::io::Result<()> {
    tokio::fs::create_dir_all(bucket_dir(root, bucket)).await?;
    tokio::fs::write(record_path(root, bucket, key), key).await
}

pub(crate) async fn forget(root: &Path, bucket: &str, key: &str) -> std::io::Result<()> {
    match tokio::fs::remove_file(record_path(root, bucket, key)).await {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub(crate) async fn forget_bucket(root: &Path, bucket: &str) -> std::io::Result<()> {
    match tokio::fs::remove_dir_all(bucket_dir(root, bucket)).await {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The bucket's markers under `prefix`, with when each was made.
async fn under(root: &Path, bucket: &str, prefix: &str) -> Vec<(String, Timestamp)> {
    let mut found = Vec::new();
    let Ok(mut entries) = tokio::fs::read_dir(bucket_dir(root, bucket)).await else {
        return found;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let (Ok(key), Ok(meta)) = (
            tokio::fs::read_to_string(entry.path()).await,
            entry.metadata().await,
        ) else {
            continue;
        };
        if key.starts_with(prefix) {
            let made = meta
                .modified()
                .map(Timestamp::from)
                .unwrap_or_else(|_| Timestamp::from(std::time::SystemTime::UNIX_EPOCH));
            found.push((key, made));
        }
    }
    found
}

/// Where a listing request stands: what it lists, and after which key it resumes.
pub(crate) struct Listing {
    pub bucket: String,
    pub prefix: String,
    pub delimited: bool,
    pub resume: Option<String>,
}

/// Adds the markers S3 would have put on this page of s3s-fs's listing: those after where it
/// resumed and, when it is truncated, up to where the next page starts.
pub(crate) async fn add_to_page(root: &Path, listing: &Listing, page: &mut ListObjectsV2Output) {
    let markers = under(root, &listing.bucket, &listing.prefix).await;
    if markers.is_empty() {
        return;
    }
    let next = page
        .is_truncated
        .unwrap_or_default()
        .then(|| page.next_continuation_token.clone())
        .flatten();
    let on_page = |key: &str| {
        listing.resume.as_deref().is_none_or(|r| key > r)
            && next.as_deref().is_none_or(|n| key <= n)
    };
    let mut added = 0;
    let contents = page.contents.get_or_insert_with(Vec::new);
    for (key, made) in &markers {
        // Listed as an object: every marker without a delimiter, the folder's own with one.
        if (!listing.delimited || *key == listing.prefix)
            && on_page(key)
            && !contents.iter().any(|o| o.key.as_deref() == Some(key))
        {
            contents.push(Object {
                key: Some(key.clone()),
                size: Some(0),
                last_modified: Some(made.clone()),
                ..Default::default()
            });
            added += 1;
        }
    }
    contents.sort_by(|a, b| a.key.cmp(&b.key));
    if listing.delimited {
        let listed = page.common_prefixes.get_or_insert_with(Vec::new);
        for (key, _) in &markers {
            let rest = &key[listing.prefix.len()..];
            let Some(end) = rest.find('/') else {
                continue;
            };
            let folder = format!("{}{}", listing.prefix, &rest[..=end]);
            if on_page(&folder) && !listed.iter().any(|p| p.prefix.as_deref() == Some(&folder)) {
                listed.push(CommonPrefix {
                    prefix: Some(folder),
                });
                added += 1;
            }
        }
        listed.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    }
    page.key_count = page.key_count.map(|n| n + added);
}
