//! Server functions by domain, with the types they exchange with the browser. Each one checks
//! the user, calls a plain function in `domain` and maps its error. Endpoints are
//! stable (`/api/<endpoint>`) so tests and separately built binaries agree.

pub mod auth;
pub mod buckets;
pub mod jobs;
pub mod registries;
pub mod services;
pub mod system;
pub mod volumes;
