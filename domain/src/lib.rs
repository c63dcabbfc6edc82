//! The domain: what the platform does, with no web framework in it. Use cases are plain async
//! functions over the platform's components (database, object store, executor, identity
//! provider), called by the web layer (`app`: server functions, the REST API, live feeds) and
//! by the server's start-up. Types that cross a boundary live in `model`.

pub mod access;
pub mod access_log;
mod app;
pub mod auth;
pub mod buckets;
pub mod db;
pub mod entitlements;
pub mod examples;
pub mod exposed;
pub mod federation;
pub mod host;
pub mod jobs;
pub mod kubernetes;
pub mod metrics;
pub mod oidc;
pub mod quotas;
pub mod registry_credentials;
pub mod services;
pub mod sessions;
pub mod settings;
pub mod status;
pub mod storage;
pub mod store;
pub mod store_keys;
pub mod usage;
pub mod users;
pub mod volumes;
pub mod zip_stream;

pub use app::App;
