//! The web layer: the dashboard's pages (isomorphic), its server functions (`api`, isomorphic:
//! the browser gets their client halves) and, with the `ssr` feature, every other HTTP entry
//! point (`web`: the OSCAR REST API, live feeds, sign-in redirects, uploads and downloads).
//! Handlers are thin: they check the caller, call a `domain` function and map its error.

pub mod api;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod web;

pub use model::{AppError, AppResult};
pub use pages::{App, shell};
