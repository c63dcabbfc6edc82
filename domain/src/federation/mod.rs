//! Federation (oscar-api.md §3.7): a service's replicas on other clusters. Jobs that wait
//! here longer than the service's `rescheduler_threshold` are handed to a member
//! ([`delegate`]); [`peers`] speaks to members; [`members`] edits the member list and copies
//! the service to them.

pub mod delegate;
pub mod members;
pub mod peers;
