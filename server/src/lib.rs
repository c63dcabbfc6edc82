//! The platform server: configuration, start-up wiring, router and telemetry. Domain code
//! lives in the `app` crate (`domain`); this crate only puts it together.

pub mod config;
pub mod router;
mod secrets;
pub mod startup;
pub mod telemetry;
