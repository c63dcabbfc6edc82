//! The supervisor's last word on a job (oscar-api.md §6.3): what the executors read back.

use serde::{Deserialize, Serialize};

/// How a job ended, as the supervisor saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Report {
    /// The script exited 0 and every output was uploaded.
    Succeeded { outputs: Vec<String> },
    /// The script failed: exit code, signal or timeout. Final; running it again would not help.
    Failed {
        exit_code: Option<i32>,
        reason: String,
        outputs: Vec<String>,
    },
    /// The platform failed (storage unreachable, bad configuration): worth retrying.
    Error { reason: String },
}

impl Report {
    /// Fails a run whose work could not all be saved once its script ended (a mount's writes),
    /// keeping the outputs it uploaded; a failed run keeps its first reason.
    pub fn fail(&mut self, reason: String) {
        if let Self::Succeeded { outputs } = self {
            *self = Self::Failed {
                exit_code: None,
                reason,
                outputs: std::mem::take(outputs),
            };
        }
    }

    /// The report as JSON of at most `limit` bytes, and how many outputs were left out to fit
    /// (the log names each upload); a long reason is shortened.
    pub fn to_json_within(&self, limit: usize) -> (String, usize) {
        let mut report = self.clone();
        let mut dropped = 0;
        loop {
            let text = serde_json::to_string(&report).unwrap_or_default();
            if text.len() <= limit {
                return (text, dropped);
            }
            match &mut report {
                Self::Succeeded { outputs } | Self::Failed { outputs, .. }
                    if !outputs.is_empty() =>
                {
                    outputs.pop();
                    dropped += 1;
                }
                Self::Failed { reason, .. } | Self::Error { reason } if reason.len() > 64 => {
                    let keep = reason.floor_char_boundary(reason.len() / 2);
                    reason.truncate(keep);
                    reason.push('…');
                }
                _ => return (text, dropped),
            }
        }
    }

    /// The process exit code: the script's own when it failed, 1 for platform errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Succeeded { .. } => 0,
            Self::Failed { exit_code, .. } => exit_code
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(1)
                .max(1),
            Self::Error { .. } => 1,
        }
    }
}
