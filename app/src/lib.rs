//! The dashboard: routes and pages (isomorphic), server functions with the types they exchange
//! (`api`), and, with the `ssr` feature, the server-side state and domain code (`server`).

pub mod api;
pub mod error;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod rest;
#[cfg(feature = "ssr")]
pub mod server;
pub mod service;
pub mod url;

pub use error::{AppError, AppResult};
pub use pages::{App, shell};
