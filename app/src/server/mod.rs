//! Server-only code: state, database, sessions and the domain functions server functions call.
//! Compiled only with the `ssr` feature.

pub mod access;
pub mod auth;
pub mod buckets;
pub mod context;
pub mod db;
pub mod entitlements;
pub mod jobs;
pub mod kubernetes;
pub mod live;
pub mod oidc;
pub mod services;
pub mod sessions;
pub mod sign_in;
pub mod state;
pub mod storage;
pub mod store;
pub mod store_keys;
pub mod transfers;
pub mod users;
pub mod zip_stream;

/// Seconds since the epoch, for record timestamps.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
