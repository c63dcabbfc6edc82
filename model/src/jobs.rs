//! Jobs as the dashboard and the REST API show them: state, trigger, activity.

use serde::{Deserialize, Serialize};

use crate::function::log::Stream;
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Failed for platform reasons too many times; waits for someone to press "retry".
    DeadLettered,
    /// Waited too long here and was handed to a federation member, which runs it.
    Delegated,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        Self::Pending,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::DeadLettered,
        Self::Delegated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
            Self::Delegated => "delegated",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::DeadLettered => "Dead-lettered",
            Self::Delegated => "Delegated",
        }
    }

    /// The pod-phase word OSCAR clients expect in `/system/logs`.
    pub fn oscar_status(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed | Self::DeadLettered => "Failed",
            Self::Delegated => "Delegated",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::DeadLettered | Self::Delegated
        )
    }
}

/// What started a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A storage notification (embedded store, MinIO webhook).
    Bucket,
    /// An upload through the dashboard or the REST API.
    Upload,
    /// `POST /job/{service}` with a payload.
    Api,
    /// `POST /run/{service}` or the dashboard's invoke panel.
    Sync,
    /// Found by the reconciler: an input object without a job (its event was lost).
    Reconciler,
    /// Found by listing an input folder in another provider (WebDAV, an S3 store), which
    /// sends no events.
    Poll,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bucket => "bucket",
            Self::Upload => "upload",
            Self::Api => "api",
            Self::Sync => "sync",
            Self::Reconciler => "reconciler",
            Self::Poll => "poll",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Bucket,
            Self::Upload,
            Self::Api,
            Self::Sync,
            Self::Reconciler,
            Self::Poll,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

/// One job as the dashboard and the REST API show it; the domain reads it straight from its row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct Job {
    pub name: String,
    pub service: String,
    pub owner: String,
    pub trigger: Trigger,
    /// `bucket/key` of the input object, for storage-triggered jobs.
    pub input: Option<String>,
    pub state: JobState,
    pub attempts: i64,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub exit_code: Option<i64>,
    /// Why it failed, or why the last attempt failed while it waits for a retry.
    pub reason: Option<String>,
    /// `bucket/key` of each uploaded output.
    #[cfg_attr(feature = "server", sqlx(try_from = "crate::columns::JsonList"))]
    pub outputs: Vec<String>,
    pub log_size: i64,
    /// The federation member it was handed to (`cluster/service`, or the endpoint's URL).
    #[serde(default)]
    pub delegated_to: Option<String>,
    /// Where the member shows its run, when it is another cluster of this platform or OSCAR.
    #[serde(default)]
    pub delegated_url: Option<String>,
    /// The cluster that handed it here (`X-Delegated-From`).
    #[serde(default)]
    pub delegated_from: Option<String>,
}

/// How busy a service is, for the services list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct JobActivity {
    pub total: i64,
    pub running: i64,
    /// Failed or dead-lettered.
    pub failed: i64,
    /// When its newest job was created.
    pub last: Option<Timestamp>,
}

/// A service's jobs, newest first, with the count in each state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct JobList {
    pub jobs: Vec<Job>,
    pub counts: Vec<(JobState, i64)>,
    /// How far the pull of the service's image is, in percent, while its first job waits
    /// for it.
    #[serde(default)]
    pub pulling: Option<u8>,
    /// Where the next (older) page starts, when there is one.
    #[serde(default)]
    pub next: Option<String>,
}

/// A page of jobs, newest first, and where the next (older) page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct JobsPage {
    pub jobs: Vec<Job>,
    pub next: Option<String>,
}

/// The answer of a synchronous run from the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    pub job: Job,
    /// The response body as upstream shapes it (base64 of the output, or the script output).
    pub response: String,
}

/// One line of a stored job log: `<RFC 3339 time> <text>`, the time followed by a tag for a
/// line that is not the script's stdout: [`LogLine::STDERR`] or [`LogLine::PLATFORM`]. The
/// REST API and downloads show the time and text only (as `kubectl logs` does); the
/// dashboard's viewer marks where each line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// Empty for a line without a time.
    pub time: &'a str,
    pub stream: Stream,
    pub text: &'a str,
}

impl<'a> LogLine<'a> {
    pub const STDERR: &'static str = ";stderr";
    pub const PLATFORM: &'static str = ";oscar";

    /// The stored form, newline included.
    pub fn format(time: &str, stream: Stream, text: &str) -> String {
        let tag = match stream {
            Stream::Out => "",
            Stream::Err => Self::STDERR,
            Stream::Platform => Self::PLATFORM,
        };
        format!("{time}{tag} {text}\n")
    }

    /// A stored line, without its newline.
    pub fn parse(line: &'a str) -> Self {
        let Some((head, text)) = line.split_once(' ') else {
            return Self {
                time: "",
                stream: Stream::Out,
                text: line,
            };
        };
        let tagged = [
            (Self::STDERR, Stream::Err),
            (Self::PLATFORM, Stream::Platform),
        ]
        .into_iter()
        .find_map(|(tag, stream)| Some((head.strip_suffix(tag)?, stream)));
        let (time, stream) = tagged.unwrap_or((head, Stream::Out));
        Self { time, stream, text }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_log_lines_read_back() {
        for (stream, text) in [
            (Stream::Out, "out"),
            (Stream::Err, "err: disk full"),
            (Stream::Platform, "[oscar] retried"),
            (Stream::Out, ""),
        ] {
            let stored = LogLine::format("2026-01-01T10:00:00.123Z", stream, text);
            let line = LogLine::parse(stored.strip_suffix('\n').unwrap());
            assert_eq!(
                line,
                LogLine {
                    time: "2026-01-01T10:00:00.123Z",
                    stream,
                    text
                }
            );
        }
        // Logs stored before lines were marked read as stdout.
        let old = LogLine::parse("2026-01-01T10:00:00Z ;stderr is text here");
        assert_eq!(old.stream, Stream::Out);
        assert_eq!(old.text, ";stderr is text here");
    }
}
