//! Server-only code: state, database, sessions and the domain functions server functions call.
//! Compiled only with the `ssr` feature.

pub mod auth;
pub mod buckets;
pub mod context;
pub mod db;
pub mod services;
pub mod sessions;
pub mod state;
pub mod storage;
pub mod users;
