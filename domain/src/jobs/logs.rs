//! Job logs: every line a job prints, timestamped, stored in the database as it arrives (so
//! it outlives the process or pod) and pushed to live viewers. Capped per job with a visible
//! notice.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Jobs;
use crate::db::Database;
pub use model::function::log::{Line, LineSplitter, Stream};
use model::jobs::LogLine;
use model::{AppResult, Timestamp};

/// How long lines wait before being written together.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
const FLUSH_AT_BYTES: usize = 32 * 1024;
/// Tries (one second apart) to store the last lines of a job while the database is down.
const FINAL_FLUSH_ATTEMPTS: usize = 30;

/// Where an executor sends a job's output lines.
pub type LogSink = mpsc::Sender<Line>;

/// The platform's own note in a job's log (why an attempt failed, why there is no output),
/// marked as the platform's, as the supervisor's messages are.
pub fn note(text: impl std::fmt::Display) -> Line {
    Line::now(Stream::Platform, format!("[oscar] {text}"))
}

/// Sends lines to the log; false once nobody stores them any more.
pub async fn send_all(lines: impl IntoIterator<Item = Line>, log: &LogSink) -> bool {
    for line in lines {
        if log.send(line).await.is_err() {
            return false;
        }
    }
    true
}

/// Starts storing the lines sent to the returned sink; the task ends (having written
/// everything) when every sender is dropped.
pub fn writer(db: Database, jobs: Jobs, job: String) -> (LogSink, tokio::task::JoinHandle<()>) {
    let (sink, mut lines) = mpsc::channel::<Line>(1024);
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

    fn add(&mut self, buffer: &mut String, line: &Line) {
        let entry = LogLine::format(&line.at.rfc3339(), line.stream, &line.text);
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
            let mut tx = db.begin_write().await?;
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

/// How a log is read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogView {
    /// Each line's text, as `kubectl logs` shows it.
    Text,
    /// Each line after its time, as `kubectl logs --timestamps` shows it.
    Timestamped,
    /// As stored, each line's time with its source's tag ([`LogLine`]): for the dashboard.
    Stored,
}

/// The whole log of a job.
pub async fn read(db: &Database, job: &str, view: LogView) -> AppResult<String> {
    let chunks: Vec<String> =
        sqlx::query_scalar("SELECT chunk FROM job_logs WHERE job = $1 ORDER BY seq")
            .bind(job)
            .fetch_all(db.pool())
            .await?;
    let stored = chunks.concat();
    Ok(match view {
        LogView::Stored => stored,
        LogView::Text | LogView::Timestamped => show(&stored, view == LogView::Timestamped),
    })
}

/// Stored lines as users read them: the text, after its time when `timestamps`.
fn show(stored: &str, timestamps: bool) -> String {
    let mut shown = String::with_capacity(stored.len());
    for line in stored.split_inclusive('\n') {
        let body = line.strip_suffix('\n');
        let parsed = LogLine::parse(body.unwrap_or(line));
        if timestamps && !parsed.time.is_empty() {
            shown.push_str(parsed.time);
            shown.push(' ');
        }
        shown.push_str(parsed.text);
        if body.is_some() {
            shown.push('\n');
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_read_times_and_text_without_marks() {
        let stored = "2026-01-01T00:00:00Z hello world\n2026-01-01T00:00:01Z \n\
                      2026-01-01T00:00:02Z;stderr oops\n2026-01-01T00:00:03Z;oscar [oscar] note\nunstamped";
        assert_eq!(
            show(stored, false),
            "hello world\n\noops\n[oscar] note\nunstamped"
        );
        assert_eq!(
            show(stored, true),
            "2026-01-01T00:00:00Z hello world\n2026-01-01T00:00:01Z \n\
             2026-01-01T00:00:02Z oops\n2026-01-01T00:00:03Z [oscar] note\nunstamped"
        );
    }
}
