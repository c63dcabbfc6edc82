//! The warm worker's contract (`supervise serve`, a synchronous service's `min_scale`): the
//! platform lays out a request's directory as it would a job's (`config/` with the `event`,
//! `providers/`, `tmp/`) inside the worker's own, connects to the worker's socket and writes one
//! [`WorkRequest`] as a JSON line; the worker runs the job as the supervisor always does,
//! writes `result.json` (and `response`) in that directory, prints [`done_line`] on its
//! output, and answers [`DONE`] on the connection. On Kubernetes ([`ClusterWork`]) the worker
//! is a pod reached over TCP: the request carries the job's files and the answer its output.

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

/// A request to a warm worker on Kubernetes, which shares no files with the platform: a
/// [`ClusterWork`] as one JSON line; the worker answers [`Frame::Accepted`] (or why not), the
/// platform sends the event's `event_len` bytes, and the worker answers with more [`Frame`]s:
/// the job's output as it is printed, the response, and the report last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterWork {
    /// The worker's token (from the service's worker Secret): only the platform may run jobs.
    pub token: String,
    pub job: String,
    /// The job's variables; the service's secrets are the worker pod's own.
    pub env: Vec<(String, String)>,
    pub timeout_secs: u64,
    pub memory: Option<u64>,
    /// `function_config.yaml`.
    pub config: String,
    pub script: String,
    /// Keys for `minio.default`.
    pub access_key: String,
    pub secret_key: String,
    pub event_len: u64,
}

/// What a worker on Kubernetes sends back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The worker takes the request: the event may follow.
    Accepted,
    /// Output of the job, as marked lines ([`crate::function::log`]), in any chunks.
    Output(Vec<u8>),
    /// A part of the synchronous response.
    Response(Vec<u8>),
    /// The job's [`crate::function::Report`] as JSON: the last frame.
    Report(Vec<u8>),
    /// Another request holds the worker: try another.
    Busy,
    /// The request was refused (a wrong token, an unreadable request): why.
    Refused(String),
}

/// Longest frame: a part of the output or of the response, or the report (the worker caps
/// it below this).
pub const MAX_FRAME: usize = 1 << 20;

impl Frame {
    /// A tag byte, the payload's length as 4 bytes big-endian, the payload.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, payload): (u8, &[u8]) = match self {
            Self::Accepted => (b'a', &[]),
            Self::Output(bytes) => (b'o', bytes),
            Self::Response(bytes) => (b's', bytes),
            Self::Report(bytes) => (b'r', bytes),
            Self::Busy => (b'b', &[]),
            Self::Refused(reason) => (b'x', reason.as_bytes()),
        };
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let mut encoded = Vec::with_capacity(5 + payload.len());
        encoded.push(tag);
        encoded.extend_from_slice(&len.to_be_bytes());
        encoded.extend_from_slice(payload);
        encoded
    }

    /// The frame at the start of `buffer` and the bytes it took; `Ok(None)` until it is whole.
    pub fn decode(buffer: &[u8]) -> Result<Option<(Self, usize)>, String> {
        let Some((&tag, rest)) = buffer.split_first() else {
            return Ok(None);
        };
        let Some(len) = rest.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > MAX_FRAME {
            return Err(format!("a frame of {len} bytes is too long"));
        }
        let Some(payload) = rest.get(4..4 + len) else {
            return Ok(None);
        };
        let payload = payload.to_vec();
        let frame = match tag {
            b'a' => Self::Accepted,
            b'o' => Self::Output(payload),
            b's' => Self::Response(payload),
            b'r' => Self::Report(payload),
            b'b' => Self::Busy,
            b'x' => Self::Refused(String::from_utf8_lossy(&payload).into_owned()),
            other => return Err(format!("an unknown frame {other:#04x}")),
        };
        Ok(Some((frame, 5 + len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_back_as_sent_whatever_the_chunks() {
        let frames = [
            Frame::Accepted,
            Frame::Output(b"1 o hello\n".to_vec()),
            Frame::Response(vec![0, 1, 2]),
            Frame::Busy,
            Frame::Refused("wrong token".into()),
            Frame::Report(b"{}".to_vec()),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        for chunk in [1, 3, 7, bytes.len()] {
            let (mut buffer, mut read) = (Vec::new(), Vec::new());
            for part in bytes.chunks(chunk) {
                buffer.extend_from_slice(part);
                while let Some((frame, used)) = Frame::decode(&buffer).unwrap() {
                    buffer.drain(..used);
                    read.push(frame);
                }
            }
            assert_eq!(read, frames, "in chunks of {chunk}");
        }
        assert!(Frame::decode(b"z\0\0\0\0").is_err());
        assert!(Frame::decode(&[b'o', 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn a_done_line_names_its_job() {
        assert_eq!(done_job(&done_line("svc-1234")), Some("svc-1234"));
        assert_eq!(done_job("oscar-supervisor: downloading x"), None);
    }
}
