use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::AppError;

/// Facts about this deployment for the Info page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformInfo {
    pub version: String,
    pub git_commit: String,
    /// "embedded" (everything on this machine) or "external" (store and database configured).
    pub mode: String,
    /// "embedded S3 (s3s)" or "external S3".
    pub storage: String,
    pub storage_endpoint: String,
    /// "SQLite" or "PostgreSQL".
    pub database: String,
}

#[server(prefix = "/api", endpoint = "system/info")]
pub async fn system_info() -> Result<PlatformInfo, AppError> {
    use crate::server::context;
    context::require_user().await?;
    Ok(context::state().info.clone())
}
