//! The platform server: configuration, start-up wiring, router and telemetry. Domain code
//! lives in the `app` crate (`app::server`); this crate only puts it together.

// The dashboard's view types nest deeply; their layout needs more than the default 128.
#![recursion_limit = "256"]

pub mod config;
pub mod router;
mod secrets;
pub mod startup;
pub mod telemetry;
