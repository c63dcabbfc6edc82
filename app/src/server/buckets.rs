//! Buckets in the object store.

use crate::api::buckets::BucketSummary;
use crate::{AppError, AppResult};

/// Every bucket the platform's store holds, sorted by name.
pub async fn list(s3: &aws_sdk_s3::Client) -> AppResult<Vec<BucketSummary>> {
    let out = s3.list_buckets().send().await.map_err(|e| {
        AppError::unavailable(
            "the object store",
            aws_sdk_s3::error::DisplayErrorContext(e),
        )
    })?;
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
