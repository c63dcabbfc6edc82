//! Buckets and objects as the bucket browser shows them.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

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
    /// Who besides the owner may use it, when `visibility` is restricted.
    pub allowed_users: Vec<String>,
    /// Whether the caller may change its sharing or delete it (owner or admin).
    pub manageable: bool,
    pub objects: i64,
    pub size: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    pub key: String,
    pub size: i64,
    pub modified: Option<Timestamp>,
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

/// What the store says of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ObjectDetails {
    pub size: i64,
    /// The type it was stored with.
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub modified: Option<Timestamp>,
    /// The user who uploaded it, when the platform or its store recorded one.
    pub uploader: Option<String>,
    /// The rest of its user metadata, by name.
    pub metadata: Vec<(String, String)>,
}

/// What the browser can show of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub details: ObjectDetails,
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
