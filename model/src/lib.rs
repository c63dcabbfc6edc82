//! The bottom layer: every type that crosses a boundary, and nothing that does I/O. The browser
//! (wasm), the web layer, the domain and the in-job supervisor all build on it, so each type
//! exists once.
//!
//! - [`error`]: the error users see, on every wire.
//! - [`service`]: the OSCAR service definition, its validation and FDL files.
//! - [`function`]: the supervisor contract (function config, events, report, response frames).
//! - [`auth`], [`buckets`], [`jobs`], [`registries`], [`services`], [`system`]: what the
//!   dashboard's server functions and the REST API exchange.
//! - [`usage`], [`quotas`]: usage metrics (`/system/metrics`) and quotas (`/system/quotas`).
//! - [`routes`], [`url`]: paths and URL encoding both sides must agree on.
//! - [`time`]: the one type of points in time.
//! - `columns` (feature `server`): how these types are stored in database columns.

pub mod auth;
pub mod buckets;
#[cfg(feature = "server")]
pub mod columns;
pub mod error;
pub mod function;
pub mod jobs;
pub mod quotas;
pub mod registries;
pub mod routes;
pub mod service;
pub mod services;
pub mod system;
pub mod time;
pub mod url;
pub mod usage;
pub mod volumes;
pub mod workflow;

pub use error::{AppError, AppResult};
pub use time::{Civil, Timestamp};
