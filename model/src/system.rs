//! Facts about the deployment and the caller's keys to the object store.

use serde::{Deserialize, Serialize};

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
    /// Where jobs run, in words.
    pub executor: String,
}

/// Which keys [`StoreCredentials`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreKeyKind {
    /// The store's root keys (the admin).
    Root,
    /// The user's own key to the embedded store, limited to the buckets they may use.
    Personal,
    /// None: an external store manages its own users.
    NotIssued,
}

/// How the signed-in user reaches the object store with their own S3 clients.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCredentials {
    pub endpoint: String,
    pub region: String,
    pub kind: StoreKeyKind,
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for StoreCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCredentials")
            .field("endpoint", &self.endpoint)
            .field("kind", &self.kind)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}
