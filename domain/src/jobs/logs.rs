//! Job logs: every line a job prints, timestamped, stored in the database as it arrives (so
//! it outlives the process or pod) and pushed to live viewers. Capped per job with a visible
//! notice.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Jobs;
use crate::db::Database;
use model::{AppResult, Timestamp};

/// How long lines wait before being written together.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
const FLUSH_AT_BYTES: usize = 32 * 1024;
/// Tries (one second apart) to store the last lines of a job while the database is down.
const FINAL_FLUSH_ATTEMPTS: usize = 30;

/// Where an executor sends a job's output lines (without their newline).
pub type LogSink = mpsc::Sender<String>;

/// Longest line kept: the rest of a longer one is dropped with a notice, so a job printing
/// without newlines cannot make the server hold its output.
pub const MAX_LINE: usize = 64 * 1024;

/// Cuts a job's output into lines of at most [`MAX_LINE`] bytes, whatever the chunks it
/// arrives in (invalid UTF-8 replaced, not dropped).
#[derive(Debug, Default)]
pub struct LineSplitter {
    line: Vec<u8>,
    /// Bytes of the current line past [`MAX_LINE`].
    cut: u64,
}

impl LineSplitter {
    /// Adds output; the lines it completes go to `lines`.
    pub fn push(&mut self, mut chunk: &[u8], lines: &mut Vec<String>) {
        while !chunk.is_empty() {
            let (part, rest, ended) = match chunk.iter().position(|b| *b == b'\n') {
                Some(end) => (&chunk[..end], &chunk[end + 1..], true),
                None => (chunk, &[][..], false),
            };
            let kept = part.len().min(MAX_LINE - self.line.len());
            self.line.extend_from_slice(&part[..kept]);
            self.cut += (part.len() - kept) as u64;
            if ended {
                lines.push(self.take());
            }
            chunk = rest;
        }
    }

    /// The last line, when the output did not end with a newline.
    pub fn finish(mut self) -> Option<String> {
        (!self.line.is_empty() || self.cut > 0).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let mut text = String::from_utf8_lossy(&self.line)
            .trim_end_matches('\r')
            .to_string();
        if self.cut > 0 {
            text.push_str(&format!(
                " [line cut: {} more bytes; lines are kept up to {MAX_LINE} bytes]",
                self.cut
            ));
        }
        self.line.clear();
        self.cut = 0;
        text
    }
}

/// Sends lines to the log; false once nobody stores them any more.
pub async fn send_all(lines: &mut Vec<String>, log: &LogSink) -> bool {
    for line in lines.drain(..) {
        if log.send(line).await.is_err() {
            return false;
        }
    }
    true
}

/// Starts storing the lines sent to the returned sink; the task ends (having written
/// everything) when every sender is dropped.
pub fn writer(db: Database, jobs: Jobs, job: String) -> (LogSink, tokio::task::JoinHandle<()>) {
    let (sink, mut lines) = mpsc::channel::<String>(1024);
    let limit = jobs.settings().log_limit;
    let task = tokio::spawn(async move {
        let mut log = Appender::open(&db, &job, limit).await;
        let mut buffer = String::new();
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        loop {
            tokio::select! {
                line = lines.recv() => match line {
                    Some(line) => {
                        log.add(&mut buffer, &line);
                        if buffer.len() >= FLUSH_AT_BYTES {
                            log.flush(&db, &jobs, &mut buffer).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => log.flush(&db, &jobs, &mut buffer).await,
            }
        }
        log.finish(&mut buffer);
        for _ in 0..FINAL_FLUSH_ATTEMPTS {
            log.flush(&db, &jobs, &mut buffer).await;
            if buffer.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if !buffer.is_empty() {
            tracing::error!(%job, bytes = buffer.len(), "the database stayed unreachable; the end of the job's log is lost");
        }
    });
    (sink, task)
}

struct Appender {
    job: String,
    limit: u64,
    size: u64,
    seq: i64,
    dropped: u64,
}

impl Appender {
    /// Continues after what earlier attempts of the job wrote.
    async fn open(db: &Database, job: &str, limit: u64) -> Self {
        let row: Result<(i64, Option<i64>), _> = sqlx::query_as(
            "SELECT COALESCE(MAX(seq), 0) AS seq, (SELECT log_size FROM jobs WHERE name = $1) AS size
             FROM job_logs WHERE job = $1",
        )
        .bind(job)
        .fetch_one(db.pool())
        .await;
        let (seq, size) = match row {
            Ok((seq, size)) => (seq, size.unwrap_or_default()),
            Err(err) => {
                tracing::warn!(%job, %err, "cannot read the job's log position");
                (0, 0)
            }
        };
        Self {
            job: job.to_string(),
            limit,
            size: size as u64,
            seq,
            dropped: 0,
        }
    }

    fn add(&mut self, buffer: &mut String, line: &str) {
        let entry = format!("{} {line}\n", Timestamp::now().rfc3339());
        if self.size + (buffer.len() + entry.len()) as u64 > self.limit {
            self.dropped += entry.len() as u64;
        } else {
            buffer.push_str(&entry);
        }
    }

    fn finish(&mut self, buffer: &mut String) {
        if self.dropped > 0 {
            buffer.push_str(&format!(
                "{} [log truncated: the limit of {} bytes per job was reached; {} bytes were dropped]\n",
                Timestamp::now().rfc3339(),
                self.limit,
                self.dropped
            ));
        }
    }

    async fn flush(&mut self, db: &Database, jobs: &Jobs, buffer: &mut String) {
        if buffer.is_empty() {
            return;
        }
        let text = std::mem::take(buffer);
        self.seq += 1;
        let written = async {
            let mut tx = db.pool().begin().await?;
            sqlx::query("INSERT INTO job_logs (job, seq, chunk) VALUES ($1, $2, $3)")
                .bind(&self.job)
                .bind(self.seq)
                .bind(&text)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE jobs SET log_size = log_size + $1 WHERE name = $2")
                .bind(text.len() as i64)
                .bind(&self.job)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        .await;
        match written {
            Ok(()) => {
                let offset = self.size;
                self.size += text.len() as u64;
                jobs.log_appended(&self.job, offset, Arc::from(text));
            }
            // The database is unreachable (a restart): the lines wait for the next flush. The
            // buffer stays within the log limit (`add`).
            Err(err) => {
                tracing::warn!(job = %self.job, %err, "cannot store job log lines yet");
                self.seq -= 1;
                buffer.insert_str(0, &text);
            }
        }
    }
}

/// The whole log of a job; `timestamps` keeps each line's time in front of it.
pub async fn read(db: &Database, job: &str, timestamps: bool) -> AppResult<String> {
    let chunks: Vec<String> =
        sqlx::query_scalar("SELECT chunk FROM job_logs WHERE job = $1 ORDER BY seq")
            .bind(job)
            .fetch_all(db.pool())
            .await?;
    let mut log = String::new();
    for chunk in chunks {
        if timestamps {
            log.push_str(&chunk);
        } else {
            log.push_str(&strip_timestamps(&chunk));
        }
    }
    Ok(log)
}

/// Removes the time in front of each line.
pub fn strip_timestamps(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| line.split_once(' ').map_or(line, |(_, rest)| rest))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, &mut lines);
        }
        lines.extend(splitter.finish());
        lines
    }

    #[test]
    fn lines_are_whole_whatever_the_chunks() {
        assert_eq!(
            split(&[b"one\ntw", b"o\r\n", b"", b"\nthree"]),
            ["one", "two", "", "three"]
        );
        assert_eq!(split(&[b"a\n"]), ["a"]);
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn a_line_longer_than_the_cap_is_cut_with_a_notice() {
        let long = vec![b'x'; MAX_LINE + 10];
        let lines = split(&[&long[..100], &long[100..], b"\nnext\n"]);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(&"x".repeat(MAX_LINE)));
        assert!(
            lines[0].ends_with("[line cut: 10 more bytes; lines are kept up to 65536 bytes]"),
            "{}",
            &lines[0][MAX_LINE..]
        );
        assert_eq!(lines[1], "next");
        let unended = split(&[&long]);
        assert_eq!(unended.len(), 1);
        assert!(unended[0].contains("[line cut: 10 more bytes"));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(split(&[b"caf\xff\n"]), ["caf\u{fffd}"]);
    }

    #[test]
    fn timestamps_can_be_left_out() {
        assert_eq!(
            strip_timestamps("2026-01-01T00:00:00Z hello world\n2026-01-01T00:00:01Z \n"),
            "hello world\n\n"
        );
    }
}
