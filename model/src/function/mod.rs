//! The contract between the platform and the supervisor inside each job: the function
//! configuration it reads, the events it receives, how it writes the job's log, the response
//! framing on its output and the report it ends with. One definition serves the supervisor,
//! the executors and the REST API.

pub mod config;
pub mod event;
pub mod log;
pub mod report;
pub mod response;
pub mod work;

pub use report::Report;
