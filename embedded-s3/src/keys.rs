//! Who may sign requests to the embedded store and what each may do. The root keys (the
//! platform's own) may do everything; every other key belongs to a person or a running job,
//! which the platform knows about through a [`KeyRing`], and may only work with objects in
//! the buckets the platform says they may use, as far as it says ([`Reach`]: a user a bucket
//! is shared with replaces and deletes only what they uploaded). Buckets themselves are
//! created, shared and deleted through the platform's API, which records who owns them.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use http::StatusCode;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::*;
use s3s::path::S3Path;
use s3s::{S3, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::markers;

/// The platform's answers about keys other than the root keys.
#[async_trait::async_trait]
pub trait KeyRing: Send + Sync + 'static {
    /// The secret of `access_key`; `None` when the key does not exist or no longer works.
    /// `Err` (with the cause for the log) when the platform cannot tell right now.
    async fn secret_key(&self, access_key: &str) -> Result<Option<String>, String>;
    /// What the holder of `access_key` may do with the objects in `bucket`.
    async fn reach(&self, access_key: &str, bucket: &str) -> Result<Reach, String>;
    /// How many more bytes `bucket` may take (its owner's storage quota): `Ok(None)` for no
    /// limit, `Ok(Some((room, why)))` with the refusal to give a larger write.
    async fn room(&self, _bucket: &str) -> Result<Option<(u64, String)>, String> {
        Ok(None)
    }
}

/// What the holder of a key may do with the objects of one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Nothing: the bucket is neither theirs nor shared with them.
    None,
    /// Every object: the bucket's owner or the admin (`uploader`: their id), or a running job
    /// of a service using the bucket (`None`: it acts for the service's owner).
    Full { uploader: Option<String> },
    /// A user the bucket is shared with: list, read and upload; replace and delete only what
    /// they uploaded themselves.
    Shared { uploader: String },
}

/// The object metadata naming who uploaded it (`x-amz-meta-oscar-uploader`). The store writes
/// it for every key but the root's, so it can be trusted.
pub const UPLOADER: &str = "oscar-uploader";

/// The root keys and, when the platform issues other keys, where to look them up.
#[derive(Clone)]
pub struct Keys {
    pub root_access_key: String,
    pub root_secret_key: String,
    pub ring: Option<Arc<dyn KeyRing>>,
}

impl Keys {
    fn is_root(&self, credentials: Option<&s3s::auth::Credentials>) -> bool {
        credentials.is_some_and(|c| c.access_key == self.root_access_key)
    }

    async fn reach(&self, access_key: &str, bucket: &str) -> S3Result<Reach> {
        match &self.ring {
            Some(ring) => ring.reach(access_key, bucket).await.map_err(unavailable),
            None => Ok(Reach::None),
        }
    }
}

fn unavailable(cause: String) -> s3s::S3Error {
    tracing::warn!(%cause, "embedded S3: cannot check a key");
    s3_error!(ServiceUnavailable, "Please try again later.")
}

#[async_trait::async_trait]
impl S3Auth for Keys {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.root_access_key {
            return Ok(SecretKey::from(self.root_secret_key.as_str()));
        }
        let found = match &self.ring {
            Some(ring) => ring.secret_key(access_key).await.map_err(unavailable)?,
            None => None,
        };
        found
            .map(SecretKey::from)
            .ok_or_else(|| s3_error!(InvalidAccessKeyId))
    }
}

/// What keys other than the root's may do on a bucket itself (besides its objects).
const BUCKET_READS: &[&str] = &[
    "ListObjects",
    "ListObjectsV2",
    "ListObjectVersions",
    "HeadBucket",
    "GetBucketLocation",
    "ListMultipartUploads",
    "DeleteObjects",
];

/// Writes whose size the request declares, checked against the bucket owner's quota. (A
/// multipart upload is checked part by part; the parts of unfinished uploads do not count.)
const WRITES: &[&str] = &["PutObject", "UploadPart"];

impl Keys {
    async fn check_room(&self, cx: &S3AccessContext<'_>, bucket: &str) -> S3Result<()> {
        let Some(ring) = &self.ring else {
            return Ok(());
        };
        let Some((room, why)) = ring.room(bucket).await.map_err(unavailable)? else {
            return Ok(());
        };
        // Signed streaming bodies declare their payload apart from the encoded length.
        let declared = ["x-amz-decoded-content-length", "content-length"]
            .iter()
            .find_map(|name| cx.headers().get(*name)?.to_str().ok()?.parse::<u64>().ok());
        match declared {
            Some(size) if size <= room => Ok(()),
            _ => Err(refusal("QuotaExceeded", StatusCode::FORBIDDEN, why)),
        }
    }
}

#[async_trait::async_trait]
impl S3Access for Keys {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "Signature is required"));
        };
        storable(cx)?;
        if self.is_root(Some(credentials)) {
            return Ok(());
        }
        let access_key = credentials.access_key.clone();
        let operation = cx.s3_op().name();
        let bucket = match cx.s3_path() {
            // Answered with the caller's buckets only (see `Scoped::list_buckets`).
            S3Path::Root if operation == "ListBuckets" => return Ok(()),
            S3Path::Bucket { bucket } if BUCKET_READS.contains(&operation) => bucket.to_string(),
            S3Path::Object { bucket, .. } => bucket.to_string(),
            _ => {
                return Err(s3_error!(
                    AccessDenied,
                    "buckets are created, shared and deleted through the platform's API (/system/buckets)"
                ));
            }
        };
        let mut buckets = vec![bucket];
        // CopyObject and UploadPartCopy read another object: its bucket must be usable too.
        if let Some(source) = cx.headers().get("x-amz-copy-source") {
            let source = copy_source_bucket(source.to_str().unwrap_or_default())
                .ok_or_else(|| s3_error!(InvalidArgument, "invalid x-amz-copy-source"))?;
            buckets.push(source);
        }
        let mut reaches = Vec::new();
        for bucket in &buckets {
            match self.reach(&access_key, bucket).await? {
                Reach::None => return Err(s3_error!(AccessDenied, "Access Denied.")),
                reach => reaches.push(reach),
            }
        }
        if WRITES.contains(&operation) {
            self.check_room(cx, &buckets[0]).await?;
        }
        // The target bucket's, for the operation itself (see `Scoped::may_replace`).
        cx.extensions_mut().insert(reaches.swap_remove(0));
        Ok(())
    }
}

/// Refuses, for everyone, the object keys s3s-fs cannot store safely (see [`object_key`]) in
/// the URL's path and the copy source; and keys whose metadata file, named after the bucket
/// and the key in base64, would not fit a file name. Keys in request bodies (DeleteObjects,
/// POST forms) are checked by [`Scoped`] once the body is read.
fn storable(cx: &S3AccessContext<'_>) -> S3Result<()> {
    let creates_upload = cx.s3_op().name() == "CreateMultipartUpload";
    let source = (cx.headers().get("x-amz-copy-source"))
        .and_then(|header| CopySource::parse(header.to_str().ok()?).ok());
    let source = match &source {
        Some(CopySource::Bucket { bucket, key, .. }) => Some((&**bucket, &**key, false)),
        _ => None,
    };
    let target = (cx.s3_path().as_object()).map(|(bucket, key)| (bucket, key, creates_upload));
    for (bucket, key, upload) in [target, source].into_iter().flatten() {
        in_bucket(key)?;
        if !metadata_fits(bucket, key, upload) {
            return Err(s3_error!(
                KeyTooLongError,
                "the key is too long for this store: its metadata file, named after the bucket and the key, would need a name of over 255 bytes"
            ));
        }
    }
    Ok(())
}

/// An object key the platform and this store accept: at most 1,024 bytes, no control
/// characters, no `.` or `..` path segments, not starting with `/`. Spaces and any other
/// unicode are fine. s3s-fs keeps an object in the file `<bucket>/<key>`, which a `..`
/// segment would move out of the bucket (and of the access checks) and a leading `/` would
/// replace (MinIO refuses both). The one check for every key, the platform's included.
pub fn object_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("is empty".into());
    }
    if key.len() > 1024 {
        return Err(format!(
            "is {} bytes long; at most 1024 are allowed",
            key.len()
        ));
    }
    if key.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if key.starts_with('/') {
        return Err("must not start with '/'".into());
    }
    if key
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
    {
        return Err("must not contain '.' or '..' path segments".into());
    }
    Ok(())
}

/// [`object_key`] as the store's answer (400 InvalidArgument).
/// A key naming a folder (`data` while `data/x` is stored) is no object, as in MinIO: 404,
/// where the file system would fail on a directory. rclone asks it of every folder it mounts.
async fn no_folder(root: &Path, bucket: &str, key: &str) -> S3Result<()> {
    let folder = !key.is_empty()
        && !key.ends_with('/')
        && in_bucket(key).is_ok()
        && tokio::fs::metadata(root.join(bucket).join(key))
            .await
            .is_ok_and(|found| found.is_dir());
    if folder {
        return Err(s3_error!(NoSuchKey, "{key:?} is a folder, not an object"));
    }
    Ok(())
}

fn in_bucket(key: &str) -> S3Result<()> {
    object_key(key).map_err(|why| s3_error!(InvalidArgument, "object key {key:?} {why}"))
}

/// Whether s3s-fs's metadata file names for the object fit in 255 bytes:
/// `.bucket-<base64>.object-<base64>` then `.metadata.json` (or `.internal.json`), or
/// `.upload-<uuid>.metadata.json` while a multipart upload is open.
fn metadata_fits(bucket: &str, key: &str, upload: bool) -> bool {
    let base64 = |text: &str| (text.len() * 4).div_ceil(3);
    let suffix = if upload {
        ".upload-00000000-0000-0000-0000-000000000000.metadata.json".len()
    } else {
        ".metadata.json".len()
    };
    ".bucket-.object-".len() + base64(bucket) + base64(key) + suffix <= 255
}

/// The bucket of an `x-amz-copy-source` header (`[/]bucket/key[?versionId=…]`, URL-encoded).
fn copy_source_bucket(header: &str) -> Option<String> {
    let path = header.strip_prefix('/').unwrap_or(header);
    let (bucket, _) = path.split_once('/')?;
    let bucket = percent_encoding::percent_decode_str(bucket)
        .decode_utf8()
        .ok()?;
    (!bucket.is_empty()).then(|| bucket.into_owned())
}

/// The file-system store, answering ListBuckets with the buckets the signer may use.
pub(crate) struct Scoped {
    pub fs: s3s_fs::FileSystem,
    /// The directory `fs` serves.
    pub root: PathBuf,
    pub keys: Keys,
}

/// s3s-fs keeps an object as the file `<bucket>/<key>`, so an object cannot be created inside
/// another one (`p/q` when `p` is an object) nor where other objects are (`p` when `p/q` or
/// the folder `p/` exists); s3s-fs fails with InternalError (500) on both. Refused like
/// MinIO, which has the same layout, with its error codes.
/// A deleted folder marker is no longer listed; other keys have no record.
async fn forget_marker(root: &Path, bucket: &str, key: &str) -> S3Result<()> {
    if key.ends_with('/') {
        markers::forget(root, bucket, key)
            .await
            .map_err(|e| s3_error!(InternalError, "cannot forget folder {key:?}: {e}"))?;
    }
    Ok(())
}

async fn check_place(root: &Path, bucket: &str, key: &str) -> S3Result<()> {
    // The key of a POST form upload comes from its body, not the path `storable` saw.
    in_bucket(key)?;
    let segments: Vec<&str> = key.split('/').collect();
    let mut path = root.join(bucket);
    for (at, segment) in segments.iter().enumerate() {
        // A folder marker (`p/`) ends with an empty segment: it makes a directory.
        if segment.is_empty() {
            continue;
        }
        path.push(segment);
        let Ok(found) = tokio::fs::symlink_metadata(&path).await else {
            // Nothing below a missing path can be in the way.
            return Ok(());
        };
        let last = at + 1 == segments.len();
        if !last && !found.is_dir() {
            let parent = segments[..=at].join("/");
            return Err(refusal(
                "XMinioParentIsObject",
                StatusCode::BAD_REQUEST,
                format!("{parent:?} is an object, so no key can continue it with '/'"),
            ));
        }
        if last && found.is_dir() {
            return Err(refusal(
                "XMinioObjectExistsAsDirectory",
                StatusCode::CONFLICT,
                format!("{key:?} is a folder (other objects are stored under {key}/)"),
            ));
        }
    }
    Ok(())
}

fn refusal(code: &'static str, status: StatusCode, message: String) -> s3s::S3Error {
    let mut error = s3s::S3Error::with_message(S3ErrorCode::Custom(code.into()), message);
    error.set_status_code(status);
    error
}

/// Who the store names as the uploader of what this request stores: `None` for the root
/// keys (the platform names the uploader itself), `Some(None)` for jobs (nobody).
fn uploader_of<T>(req: &S3Request<T>) -> Option<Option<String>> {
    let Some(reach) = reach_of(req) else {
        // A link the root keys signed: whoever holds it chooses the headers it is sent with,
        // so its uploader metadata says nothing.
        return presigned(req).then_some(None);
    };
    match reach {
        Reach::Full { uploader } => Some(uploader),
        Reach::Shared { uploader } => Some(Some(uploader)),
        Reach::None => None,
    }
}

/// Whether the request is signed in its query string (a presigned link).
fn presigned<T>(req: &S3Request<T>) -> bool {
    req.uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("X-Amz-Signature=")))
}

/// Names the signer as the uploader whatever the request said: who may delete an object
/// depends on it.
fn name_uploader(uploader: Option<Option<String>>, metadata: &mut Option<Metadata>) {
    let Some(uploader) = uploader else {
        return;
    };
    let metadata = metadata.get_or_insert_default();
    metadata.remove(UPLOADER);
    if let Some(uploader) = uploader {
        metadata.insert(UPLOADER.into(), uploader);
    }
}

/// The target bucket's [`Reach`] of a request signed with a key other than the root's.
fn reach_of<T>(req: &S3Request<T>) -> Option<Reach> {
    req.extensions.get::<Reach>().cloned()
}

/// A HeadObject of `bucket/key` for the store's own checks.
fn probe(bucket: &str, key: &str) -> S3Request<HeadObjectInput> {
    S3Request {
        input: HeadObjectInput {
            bucket: bucket.into(),
            key: key.into(),
            ..Default::default()
        },
        method: http::Method::HEAD,
        uri: http::Uri::default(),
        headers: http::HeaderMap::new(),
        extensions: http::Extensions::new(),
        credentials: None,
        region: None,
        service: None,
        trailing_headers: None,
    }
}

impl Scoped {
    /// A user the bucket is shared with replaces or deletes only the objects they uploaded.
    /// Folder markers are not checked: s3s-fs removes a folder only when it is empty.
    async fn may_replace(&self, reach: Option<&Reach>, bucket: &str, key: &str) -> S3Result<()> {
        let Some(Reach::Shared { uploader }) = reach else {
            return Ok(());
        };
        if key.ends_with('/') {
            return Ok(());
        }
        match self.fs.head_object(probe(bucket, key)).await {
            Err(e) if *e.code() == S3ErrorCode::NoSuchKey => Ok(()),
            Err(e) => Err(e),
            Ok(found)
                if found.output.metadata.as_ref().and_then(|m| m.get(UPLOADER))
                    == Some(uploader) =>
            {
                Ok(())
            }
            Ok(_) => Err(s3_error!(
                AccessDenied,
                "{key:?} was uploaded by someone else: only its uploader and the bucket's owner may replace or delete it"
            )),
        }
    }
}

type Answer<'a, T> = Pin<Box<dyn Future<Output = S3Result<S3Response<T>>> + Send + 'a>>;

/// Hands operations to the file-system store unchanged (the trait's methods, as
/// `async_trait` writes them).
macro_rules! delegate {
    ($($operation:ident($input:ty) -> $output:ty;)*) => {
        $(
            fn $operation<'a, 'b>(&'a self, req: S3Request<$input>) -> Answer<'b, $output>
            where
                'a: 'b,
                Self: 'b,
            {
                self.fs.$operation(req)
            }
        )*
    };
}

/// Hands operations that create an object to the file-system store once [`check_place`]
/// agrees.
macro_rules! placed {
    ($($operation:ident($input:ty) -> $output:ty;)*) => {
        $(
            fn $operation<'a, 'b>(&'a self, req: S3Request<$input>) -> Answer<'b, $output>
            where
                'a: 'b,
                Self: 'b,
            {
                Box::pin(async move {
                    let mut req = req;
                    let reach = reach_of(&req);
                    check_place(&self.root, &req.input.bucket, &req.input.key).await?;
                    self.may_replace(reach.as_ref(), &req.input.bucket, &req.input.key).await?;
                    let uploader = uploader_of(&req);
                    name_uploader(uploader, &mut req.input.metadata);
                    let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
                    let answer = self.fs.$operation(req).await?;
                    if key.ends_with('/') {
                        markers::record(&self.root, &bucket, &key)
                            .await
                            .map_err(|e| s3_error!(InternalError, "cannot record folder {key:?}: {e}"))?;
                    }
                    Ok(answer)
                })
            }
        )*
    };
}

#[async_trait::async_trait]
impl S3 for Scoped {
    delegate! {
        create_bucket(CreateBucketInput) -> CreateBucketOutput;
        get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
        head_bucket(HeadBucketInput) -> HeadBucketOutput;
        list_objects(ListObjectsInput) -> ListObjectsOutput;
        upload_part(UploadPartInput) -> UploadPartOutput;
        upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput;
        list_parts(ListPartsInput) -> ListPartsOutput;
        abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput;
    }

    /// The bucket's folder records go with it.
    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = req.input.bucket.clone();
        let answer = self.fs.delete_bucket(req).await?;
        markers::forget_bucket(&self.root, &bucket)
            .await
            .map_err(|e| {
                s3_error!(
                    InternalError,
                    "cannot forget the folders of {bucket:?}: {e}"
                )
            })?;
        Ok(answer)
    }

    /// With the folder markers s3s-fs does not list ([`markers`]). Delimiters other than
    /// `/` list as s3s-fs does.
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = &req.input;
        let listing = markers::Listing {
            bucket: input.bucket.clone(),
            prefix: input.prefix.clone().unwrap_or_default(),
            delimited: input.delimiter.as_deref() == Some("/"),
            resume: [
                input.continuation_token.as_deref(),
                input.start_after.as_deref(),
            ]
            .into_iter()
            .flatten()
            .max()
            .map(str::to_string),
        };
        let plain = input.delimiter.as_deref().is_none_or(|d| d == "/");
        let mut answer = self.fs.list_objects_v2(req).await?;
        if plain {
            markers::add_to_page(&self.root, &listing, &mut answer.output).await;
        }
        Ok(answer)
    }

    // CreateMultipartUpload too, so nothing is sent for an upload that cannot complete.
    placed! {
        put_object(PutObjectInput) -> PutObjectOutput;
        create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput;
    }

    /// As [`placed!`]; the copy's metadata is the source's (S3's default) with its uploader
    /// replaced, so a copy of someone else's object is the copier's.
    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let mut req = req;
        let reach = reach_of(&req);
        check_place(&self.root, &req.input.bucket, &req.input.key).await?;
        self.may_replace(reach.as_ref(), &req.input.bucket, &req.input.key)
            .await?;
        let Some(uploader) = uploader_of(&req) else {
            return self.fs.copy_object(req).await;
        };
        let copies = req.input.metadata_directive.as_ref().map(|d| d.as_str())
            != Some(MetadataDirective::REPLACE);
        let source = match &req.input.copy_source {
            CopySource::Bucket { bucket, key, .. } if copies => Some(probe(bucket, key)),
            _ => None,
        };
        if let Some(source) = source {
            let source = self.fs.head_object(source).await?.output;
            req.input.metadata = source.metadata;
            req.input.content_type = source.content_type;
            req.input.metadata_directive =
                Some(MetadataDirective::from_static(MetadataDirective::REPLACE));
        }
        name_uploader(Some(uploader), &mut req.input.metadata);
        self.fs.copy_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        no_folder(&self.root, &req.input.bucket, &req.input.key).await?;
        self.fs.head_object(req).await
    }

    /// With S3's response overrides (`response-content-type`, `response-content-disposition`),
    /// which the platform's share links use to serve stored files as downloads.
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        no_folder(&self.root, &req.input.bucket, &req.input.key).await?;
        let content_type = req.input.response_content_type.clone();
        let disposition = req.input.response_content_disposition.clone();
        let mut answer = self.fs.get_object(req).await?;
        if content_type.is_some() {
            answer.output.content_type = content_type;
        }
        if disposition.is_some() {
            answer.output.content_disposition = disposition;
        }
        Ok(answer)
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let reach = reach_of(&req);
        self.may_replace(reach.as_ref(), &req.input.bucket, &req.input.key)
            .await?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let answer = self.fs.delete_object(req).await?;
        forget_marker(&self.root, &bucket, &key).await?;
        Ok(answer)
    }

    /// The keys are in the body, which the access check does not see: s3s-fs would delete
    /// `<bucket>/../other/key`, or another bucket's folder with `../other/`.
    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        for object in &req.input.delete.objects {
            in_bucket(&object.key)?;
        }
        let reach = reach_of(&req);
        for object in &req.input.delete.objects {
            self.may_replace(reach.as_ref(), &req.input.bucket, &object.key)
                .await?;
        }
        let bucket = req.input.bucket.clone();
        let keys: Vec<String> = (req.input.delete.objects.iter())
            .map(|o| o.key.clone())
            .collect();
        let answer = self.fs.delete_objects(req).await?;
        for key in keys {
            forget_marker(&self.root, &bucket, &key).await?;
        }
        Ok(answer)
    }

    /// s3s-fs fails with InternalError (500) on a part that was never uploaded, after it has
    /// dropped the upload; S3 answers InvalidPart and keeps it, so the parts are checked first.
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        check_place(&self.root, &req.input.bucket, &req.input.key).await?;
        // The object may have been stored by someone else since the upload started.
        let reach = reach_of(&req);
        self.may_replace(reach.as_ref(), &req.input.bucket, &req.input.key)
            .await?;
        let requested: Vec<i32> = (req.input.multipart_upload.as_ref())
            .and_then(|upload| upload.parts.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|part| part.part_number)
            .collect();
        if !requested.is_empty() {
            let listing = req.clone().map_input(|input| ListPartsInput {
                bucket: input.bucket,
                key: input.key,
                upload_id: input.upload_id,
                ..Default::default()
            });
            let uploaded = self.fs.list_parts(listing).await?.output.parts;
            let uploaded: Vec<i32> = (uploaded.iter().flatten())
                .filter_map(|part| part.part_number)
                .collect();
            if let Some(missing) = requested.iter().find(|n| !uploaded.contains(n)) {
                return Err(s3_error!(
                    InvalidPart,
                    "part {missing} has not been uploaded"
                ));
            }
        }
        self.fs.complete_multipart_upload(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let signer = req.credentials.clone();
        let mut answer = self.fs.list_buckets(req).await?;
        if self.keys.is_root(signer.as_ref()) {
            return Ok(answer);
        }
        let access_key = signer.map(|c| c.access_key).unwrap_or_default();
        let mut usable = Vec::new();
        for bucket in answer.output.buckets.take().unwrap_or_default() {
            let name = bucket.name.as_deref().unwrap_or_default();
            if self.keys.reach(&access_key, name).await? != Reach::None {
                usable.push(bucket);
            }
        }
        answer.output.buckets = Some(usable);
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::{copy_source_bucket, object_key};

    #[test]
    fn object_keys_allow_unicode_but_not_path_tricks() {
        assert!(object_key("in/cat photo été.jpg").is_ok());
        assert!(object_key("in/folder/").is_ok());
        assert!(object_key("a/../b").unwrap_err().contains("'..'"));
        assert!(object_key("../other/").is_err());
        assert!(object_key("./a").is_err());
        assert!(object_key("/a").is_err());
        assert!(object_key("a\nb").is_err());
        assert!(
            object_key(&"x".repeat(1025))
                .unwrap_err()
                .contains("1025 bytes")
        );
        assert!(object_key("").is_err());
    }

    #[test]
    fn copy_sources_name_their_bucket() {
        assert_eq!(copy_source_bucket("/b/k").as_deref(), Some("b"));
        assert_eq!(
            copy_source_bucket("b/dir/k?versionId=1").as_deref(),
            Some("b")
        );
        assert_eq!(
            copy_source_bucket("my%2Dbucket/k").as_deref(),
            Some("my-bucket")
        );
        assert_eq!(copy_source_bucket("/b"), None);
        assert_eq!(copy_source_bucket("//k"), None);
    }
}
