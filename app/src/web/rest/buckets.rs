//! `/system/buckets`: OSCAR's bucket API (oscar-api.md §3.5), answered with upstream's types
//! in their field order (`MinIOBucket`, `BucketListResponse`, `PresignResponse`).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Principal;
use super::openapi::documented;
use crate::web::state::AppState;
use crate::{AppError, AppResult};
use domain::buckets::{self, Access, BucketRecord, Listing, Sharing};
use domain::store_keys;
use model::Timestamp;
use model::service::Visibility;

/// Objects per page of `GET /system/buckets/{bucket}` unless `limit` says otherwise.
const PAGE: i32 = 70;

pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    [
        routes!(list, create, update),
        routes!(read, remove),
        routes!(presign),
    ]
    .into_iter()
    .fold(router, documented)
}

/// A bucket named in the path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct BucketName {
    /// The bucket's name.
    bucket: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(default)]
struct BucketRequest {
    /// `bucket` or `bucket/folder` (creating makes the folder too).
    bucket_name: String,
    visibility: Option<Visibility>,
    /// Who may use a `restricted` bucket.
    allowed_users: Vec<String>,
    metadata: Value,
}

impl Default for BucketRequest {
    fn default() -> Self {
        Self {
            bucket_name: String::new(),
            visibility: None,
            allowed_users: Vec::new(),
            metadata: Value::Null,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct MinioBucket {
    bucket_name: String,
    visibility: String,
    allowed_users: Vec<String>,
    owner: String,
    metadata: Value,
}

/// Upstream's `BucketListResponse`: the bucket, a page of its objects, then the paging.
#[derive(Serialize, ToSchema)]
struct BucketPage {
    #[serde(flatten)]
    bucket: MinioBucket,
    objects: Vec<MinioObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page: Option<String>,
    is_truncated: bool,
    returned_items: usize,
}

#[derive(Serialize, ToSchema)]
struct MinioObject {
    object_name: String,
    size_bytes: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
}

fn parse(body: &Bytes) -> AppResult<BucketRequest> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request("body", format!("not a bucket: {e}")))
}

/// Creates a bucket owned by the caller; `bucket_name` may be `bucket/folder`: the folder is
/// created too.
#[utoipa::path(post, operation_id = "create_bucket", path = "/system/buckets", tag = "buckets", request_body = BucketRequest,
    responses((status = 201, description = "Created"),
        (status = 409, description = "The bucket exists", body = String, content_type = "text/plain")))]
async fn create(
    State(state): State<AppState>,
    Principal(caller): Principal,
    body: Bytes,
) -> AppResult<StatusCode> {
    let request = parse(&body)?;
    buckets::create(
        &state.db,
        &state.s3.client,
        &caller,
        &request.bucket_name,
        &Sharing {
            visibility: request.visibility.unwrap_or_default(),
            allowed_users: request.allowed_users,
        },
    )
    .await?;
    Ok(StatusCode::CREATED)
}

fn minio_bucket(record: BucketRecord) -> MinioBucket {
    MinioBucket {
        bucket_name: record.name,
        visibility: record.visibility.as_str().to_string(),
        allowed_users: record.allowed_users,
        owner: record.owner,
        metadata: match record.service {
            Some(service) => json!({"from_service": service}),
            None => json!({}),
        },
    }
}

/// Buckets the caller may use (every bucket for the admin), with their sharing settings.
#[utoipa::path(get, operation_id = "list_buckets", path = "/system/buckets", tag = "buckets",
    responses((status = 200, description = "The buckets", body = Vec<MinioBucket>)))]
async fn list(
    State(state): State<AppState>,
    Principal(caller): Principal,
) -> AppResult<Json<Vec<MinioBucket>>> {
    let records = buckets::visible_to(&state.db, &state.s3.client, &caller).await?;
    Ok(Json(records.into_iter().map(minio_bucket).collect()))
}

/// Changes a bucket's visibility and allowed users; buckets made for services keep the
/// service's settings.
#[utoipa::path(put, operation_id = "update_bucket", path = "/system/buckets", tag = "buckets", request_body = BucketRequest,
    responses((status = 204, description = "Changed")))]
async fn update(
    State(state): State<AppState>,
    Principal(caller): Principal,
    body: Bytes,
) -> AppResult<StatusCode> {
    let request = parse(&body)?;
    let bucket = request.bucket_name.trim_matches('/');
    let sharing = Sharing {
        visibility: request.visibility.unwrap_or_default(),
        allowed_users: request.allowed_users,
    };
    buckets::share(&state.db, &state.s3.client, &caller, bucket, &sharing).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Empties and deletes a bucket.
#[utoipa::path(delete, operation_id = "delete_bucket", path = "/system/buckets/{bucket}", tag = "buckets", params(BucketName),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(BucketName { bucket }): Path<BucketName>,
) -> AppResult<StatusCode> {
    buckets::remove(&state.db, &state.s3.client, &caller, &bucket).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ObjectsQuery {
    /// `next_page` of the page before.
    page: Option<String>,
    /// Only keys that start with it.
    prefix: Option<String>,
    /// Objects per page: 1 to 1000, default 70.
    limit: Option<i32>,
}

/// The bucket and a page of its objects (all keys under `prefix`, not folders): honours
/// `prefix` and `limit` (at most 1000) besides upstream's `page`.
#[utoipa::path(get, operation_id = "read_bucket", path = "/system/buckets/{bucket}", tag = "buckets", params(BucketName, ObjectsQuery),
    responses((status = 200, description = "The bucket and a page of its objects", body = BucketPage)))]
async fn read(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(BucketName { bucket: name }): Path<BucketName>,
    Query(query): Query<ObjectsQuery>,
) -> AppResult<Json<BucketPage>> {
    let bucket = minio_bucket(
        buckets::authorize(&state.db, &state.s3.client, &caller, &name, Access::Use).await?,
    );
    let page = buckets::list_objects(
        &state.s3.client,
        &name,
        &query.prefix.unwrap_or_default(),
        query.page,
        query.limit.unwrap_or(PAGE),
        Listing::AllBelow,
    )
    .await?;
    let objects: Vec<MinioObject> = page
        .objects
        .into_iter()
        .map(|o| MinioObject {
            object_name: o.key,
            size_bytes: o.size,
            last_modified: o.modified.map(Timestamp::rfc3339),
        })
        .collect();
    Ok(Json(BucketPage {
        bucket,
        returned_items: objects.len(),
        objects,
        is_truncated: page.next.is_some(),
        next_page: page.next,
    }))
}

/// Unknown fields are ignored, as upstream's decoder does.
#[derive(Deserialize, ToSchema)]
struct PresignRequest {
    object_key: Option<String>,
    /// `download` (the default) or `upload`.
    operation: Option<String>,
    /// Seconds, 1 to 604800 (default 900); a number or a numeric string.
    expires_in: Option<Value>,
    /// oscar-python's name for it.
    expires: Option<Value>,
    content_type: Option<String>,
}

/// Upstream's `PresignResponse`, less `headers` (no `extra_headers` are signed here).
#[derive(Serialize, ToSchema)]
struct Presigned {
    object_key: String,
    operation: String,
    method: &'static str,
    url: String,
    expires_at: String,
}

/// Seconds given as a number or a numeric string (oscar-python and the Robot suite send
/// `"3600"`); absent or null is 0, which leaves it to the other field or the default.
fn seconds(field: &str, value: Option<Value>) -> AppResult<u64> {
    match &value {
        None | Some(Value::Null) => Some(0),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| {
        let given = value.unwrap_or_default();
        AppError::bad_request(field, format!("{given} is not a number of seconds"))
    })
}

/// A URL to download or upload one object without credentials (900 s unless asked; 1 to
/// 604800). Both `expires_in` and oscar-python's `expires` are read; 0 means the default.
#[utoipa::path(post, operation_id = "presign_object", path = "/system/buckets/{bucket}/presign", tag = "buckets", params(BucketName),
    request_body = PresignRequest,
    responses((status = 200, description = "The link", body = Presigned)))]
async fn presign(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(BucketName { bucket }): Path<BucketName>,
    body: Bytes,
) -> AppResult<Json<Presigned>> {
    let record =
        buckets::authorize(&state.db, &state.s3.client, &caller, &bucket, Access::Use).await?;
    let request: PresignRequest = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request("body", format!("not a presign request: {e}")))?;
    let key = request
        .object_key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| AppError::bad_request("object_key", "is required"))?;
    let seconds = [
        ("expires_in", request.expires_in),
        ("expires", request.expires),
    ]
    .into_iter()
    .map(|(field, value)| seconds(field, value))
    .find(|seconds| !matches!(seconds, Ok(0)))
    .unwrap_or(Ok(900))?;
    let expires = Duration::from_secs(seconds);
    let operation = request.operation.unwrap_or_else(|| "download".into());
    if operation == "upload" {
        // Checked when the link is made too (the admin's links carry the root keys).
        buckets::check_key("object_key", &key)?;
        buckets::may_replace(&state.s3.client, &record, &caller, &key).await?;
    }
    let signer =
        store_keys::link_signer(&state.db, state.jobs.storage(), &state.s3.client, &caller).await?;
    let (method, url) = match operation.as_str() {
        "download" => (
            "GET",
            buckets::share_link(&signer, &bucket, &key, expires).await?,
        ),
        "upload" => (
            "PUT",
            buckets::upload_link(
                &signer,
                &bucket,
                &key,
                expires,
                request.content_type.as_deref(),
            )
            .await?,
        ),
        other => {
            return Err(AppError::bad_request(
                "operation",
                format!("{other:?} is not one of: upload, download"),
            ));
        }
    };
    Ok(Json(Presigned {
        object_key: key,
        operation,
        method,
        url,
        expires_at: (Timestamp::now() + expires).rfc3339(),
    }))
}
