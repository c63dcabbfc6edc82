//! Server-only HTTP adapters over the domain: the shared state, the request context of server
//! functions, the OSCAR REST API, live feeds, the OIDC redirects and streamed transfers.

pub mod context;
pub mod live;
pub mod rest;
pub mod server_fn_status;
pub mod sign_in;
pub mod state;
pub mod transfers;
