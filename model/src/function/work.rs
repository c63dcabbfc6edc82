//! The warm worker's contract (`supervise serve`, a synchronous service's `min_scale`): the
//! platform lays out a request's directory as it would a job's (`config/`, `providers/`,
//! `event`) inside the worker's own, connects to the worker's socket and writes one
//! [`WorkRequest`] as a JSON line; the worker runs the job as the supervisor always does,
//! writes `result.json` (and `response`) in that directory, prints [`done_line`] on its
//! output, and answers [`DONE`] on the connection.

use serde::{Deserialize, Serialize};

/// Where a worker takes requests, in its directory.
pub const WORKER_SOCKET: &str = "worker.sock";
/// The worker's answer once the request's result is written.
pub const DONE: &str = "done\n";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkRequest {
    /// The job's name.
    pub job: String,
    /// The request's directory, as the worker sees it.
    pub dir: String,
    /// The job's environment: the service's variables and secrets, `JOB_UUID`, …
    pub env: Vec<(String, String)>,
    /// The script's time limit, in seconds.
    pub timeout_secs: u64,
    /// The script's memory limit, in bytes.
    pub memory: Option<u64>,
}

/// The line a worker prints after a request's last line of output: what came before it on
/// the worker's output belongs to that request's job.
pub fn done_line(job: &str) -> String {
    format!("{DONE_PREFIX}{job}{DONE_SUFFIX}")
}

/// The job a [`done_line`] names.
pub fn done_job(line: &str) -> Option<&str> {
    line.strip_prefix(DONE_PREFIX)?.strip_suffix(DONE_SUFFIX)
}

const DONE_PREFIX: &str = "oscar-supervisor: request ";
const DONE_SUFFIX: &str = " done";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_done_line_names_its_job() {
        assert_eq!(done_job(&done_line("svc-1234")), Some("svc-1234"));
        assert_eq!(done_job("oscar-supervisor: downloading x"), None);
    }
}
