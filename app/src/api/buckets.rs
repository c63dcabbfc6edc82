use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketSummary {
    pub name: String,
    /// Creation time as the store reports it (RFC 3339).
    pub created: Option<String>,
}

#[server(prefix = "/api", endpoint = "buckets/list")]
pub async fn list_buckets() -> Result<Vec<BucketSummary>, AppError> {
    use crate::server::{buckets, context};
    context::require_user().await?;
    buckets::list(&context::state().s3).await
}
