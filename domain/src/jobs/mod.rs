//! Jobs: the durable queue, its dispatcher, the executors and the job history with logs.
//!
//! Every event source ends in [`enqueue`], which writes the job row (and, for storage events,
//! the object version it was made for) before the event is acknowledged. The
//! [`dispatch::Dispatcher`] claims pending jobs with a lease, runs them through an
//! [`executor::Executor`] and records the outcome; a job whose server died is claimed again once
//! its lease expires.

mod beneath;
pub mod deployment;
pub mod dispatch;
pub mod events;
pub mod executor;
mod history;
pub mod local;
pub mod logs;
pub mod polling;
mod queue;
pub mod rclone;
pub mod sandbox;
pub mod slots;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};

pub use self::history::*;
pub use self::queue::*;
use crate::metrics::Metrics;
use executor::{Executor, StorageAccess};
pub use model::jobs::{Job, JobList, JobState, Trigger};

/// Limits and periods of job handling (all configurable, see `server/src/config.rs`).
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Jobs of one service running at once, unless the service sets
    /// [`MAX_CONCURRENCY_ANNOTATION`].
    pub max_concurrent_per_service: u32,
    /// Attempts for platform failures before a job is dead-lettered.
    pub max_attempts: u32,
    /// How long a claimed job stays with its server without a heartbeat.
    pub lease: Duration,
    /// Wall-clock limit of an asynchronous job.
    pub timeout: Duration,
    /// Wall-clock limit of a synchronous run (`/run`).
    pub sync_timeout: Duration,
    /// Log bytes kept per job; the rest is dropped with a notice.
    pub log_limit: u64,
    /// Largest `/job` or `/run` body (`OSCAR_MAX_PAYLOAD_BYTES`); larger ones get 413.
    pub payload_limit: u64,
    /// Where `/run` bodies wait for their job (`<data dir>/spool`).
    pub spool: std::path::PathBuf,
    /// Finished jobs and their logs are deleted after this long.
    pub retention: Duration,
    /// How often input folders are listed for objects without a job; None disables it.
    pub reconcile_every: Option<Duration>,
    /// How often input folders in other providers (WebDAV, other S3 stores), which send no
    /// events, are listed for new files; None disables it.
    pub poll_every: Option<Duration>,
    /// Whether federation members may be on loopback, private or link-local addresses.
    pub private_peers: bool,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            max_concurrent_per_service: 10,
            max_attempts: 5,
            lease: Duration::from_secs(30),
            timeout: Duration::from_secs(3600),
            sync_timeout: Duration::from_secs(300),
            log_limit: 1024 * 1024,
            payload_limit: 64 * 1024 * 1024,
            spool: std::env::temp_dir().join("oscar-spool"),
            retention: Duration::from_secs(30 * 24 * 3600),
            reconcile_every: Some(Duration::from_secs(60)),
            poll_every: Some(Duration::from_secs(30)),
            private_peers: false,
        }
    }
}

/// The PostgreSQL channel servers tell each other about job changes on.
const PEER_CHANNEL: &str = "oscar_jobs";

/// A service annotation overriding the per-service concurrency limit.
pub const MAX_CONCURRENCY_ANNOTATION: &str = "oscar/max-concurrent-jobs";

/// A job changed state (or appeared, or was deleted): what live views listen to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobChange {
    pub service: String,
    pub job: String,
}

/// New log text of a running job.
#[derive(Debug, Clone)]
pub struct LogAppended {
    pub job: String,
    /// Where the text starts in the stored log.
    pub offset: u64,
    pub text: Arc<str>,
}

/// The job machinery one server runs: executor, wake-ups and live notifications.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    settings: JobSettings,
    executor: Arc<dyn Executor>,
    /// The platform's Prometheus metrics (jobs count their runs and claims in them).
    metrics: Arc<Metrics>,
    storage: StorageAccess,
    /// Identifies this server's leases.
    instance: String,
    wake: Notify,
    /// Where job changes are published for other servers (PostgreSQL only).
    peers: std::sync::OnceLock<sqlx::AnyPool>,
    changes: broadcast::Sender<JobChange>,
    logs: broadcast::Sender<LogAppended>,
    /// Whether the store jobs use was found unreachable: until it answers again, jobs wait in
    /// the queue instead of spending their attempts on failures nobody can fix by retrying.
    store_down: AtomicBool,
    /// The runs of this server that can be told to stop, by job.
    stops: Mutex<HashMap<String, watch::Sender<Option<String>>>>,
    /// Where synchronous services with warm workers run their `/run` jobs (embedded mode).
    warm: std::sync::OnceLock<Arc<crate::exposed::Exposed>>,
    /// Federation members' clients, tokens and loads.
    members: crate::federation::peers::Peers,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("instance", &self.inner.instance)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Jobs {
    pub fn new(
        settings: JobSettings,
        executor: Arc<dyn Executor>,
        metrics: Arc<Metrics>,
        storage: StorageAccess,
    ) -> Self {
        let private_peers = settings.private_peers;
        Self {
            inner: Arc::new(Inner {
                settings,
                executor,
                metrics,
                storage,
                instance: hex::encode(rand::random::<[u8; 8]>()),
                wake: Notify::new(),
                peers: std::sync::OnceLock::new(),
                changes: broadcast::channel(1024).0,
                logs: broadcast::channel(4096).0,
                store_down: AtomicBool::new(false),
                stops: Mutex::default(),
                warm: Default::default(),
                members: crate::federation::peers::Peers::new(private_peers),
            }),
        }
    }

    /// How federation members are reached.
    pub fn peers(&self) -> &crate::federation::peers::Peers {
        &self.inner.members
    }

    pub fn settings(&self) -> &JobSettings {
        &self.inner.settings
    }

    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// How jobs reach the platform store.
    pub fn storage(&self) -> &StorageAccess {
        &self.inner.storage
    }

    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.inner.executor
    }

    /// Lets synchronous services' warm workers run their `/run` jobs.
    pub fn use_warm_workers(&self, instances: Arc<crate::exposed::Exposed>) {
        let _ = self.inner.warm.set(instances);
    }

    /// Runs an execution where it goes: a warm worker of its service when one serves it (and
    /// takes it), else the executor.
    pub async fn run(
        &self,
        service: &model::service::Service,
        execution: executor::Execution,
        log: logs::LogSink,
    ) -> Result<executor::Finished, String> {
        match self.inner.warm.get() {
            Some(warm) if warm.serves(service, &execution) => {
                match warm.run_warm(service, execution, log.clone()).await {
                    Ok(ran) => ran,
                    Err(execution) => self.inner.executor.run(service, execution, log).await,
                }
            }
            _ => self.inner.executor.run(service, execution, log).await,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Tells live views and the dispatcher that a job changed, here and (on PostgreSQL) on
    /// every other server of the platform.
    pub fn changed(&self, service: &str, job: &str) {
        self.changed_here(service, job);
        if let Some(pool) = self.inner.peers.get() {
            let payload = format!("{}/{service}/{job}", self.inner.instance);
            let pool = pool.clone();
            tokio::spawn(async move {
                let sent = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(PEER_CHANNEL)
                    .bind(payload)
                    .execute(&pool)
                    .await;
                if let Err(err) = sent {
                    tracing::debug!(%err, "cannot tell other servers about a job change");
                }
            });
        }
    }

    fn changed_here(&self, service: &str, job: &str) {
        let _ = self.inner.changes.send(JobChange {
            service: service.to_string(),
            job: job.to_string(),
        });
        self.inner.wake.notify_one();
    }

    /// Shares job changes with the other servers on the same PostgreSQL database (LISTEN /
    /// NOTIFY): their pages update live and their dispatchers wake for jobs queued here.
    /// Runs until `stop`.
    pub async fn share_changes(
        &self,
        db: &crate::db::Database,
        url: &str,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), sqlx::Error> {
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(PEER_CHANNEL).await?;
        let _ = self.inner.peers.set(db.pool().clone());
        loop {
            tokio::select! {
                received = listener.recv() => {
                    let notification = received?;
                    let mut parts = notification.payload().splitn(3, '/');
                    let (Some(instance), Some(service), Some(job)) = (parts.next(), parts.next(), parts.next()) else {
                        continue;
                    };
                    if instance != self.inner.instance {
                        self.changed_here(service, job);
                    }
                }
                _ = stop.changed() => return Ok(()),
            }
        }
    }

    pub fn subscribe_changes(&self) -> broadcast::Receiver<JobChange> {
        self.inner.changes.subscribe()
    }

    pub fn subscribe_logs(&self) -> broadcast::Receiver<LogAppended> {
        self.inner.logs.subscribe()
    }

    pub(crate) fn log_appended(&self, job: &str, offset: u64, text: Arc<str>) {
        let _ = self.inner.logs.send(LogAppended {
            job: job.to_string(),
            offset,
            text,
        });
    }

    /// Registers this server's run of `job` as one that can be told to stop, until the signal
    /// is dropped.
    pub(crate) fn stoppable(&self, job: &str) -> StopSignal {
        let (sender, receiver) = watch::channel(None);
        self.stops().insert(job.to_string(), sender);
        StopSignal {
            jobs: self.clone(),
            job: job.to_string(),
            receiver,
        }
    }

    /// Tells this server's run of `job`, if it has one, to stop; `reason` says who asked.
    pub(crate) fn stop_here(&self, job: &str, reason: &str) {
        if let Some(sender) = self.stops().get(job) {
            sender.send_replace(Some(reason.to_string()));
        }
    }

    fn stops(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Option<String>>>> {
        // Nothing can be left half-changed in a map insert or removal.
        self.inner.stops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether jobs may start: true unless the store was found unreachable and still is.
    pub(crate) async fn store_ready(&self) -> bool {
        if !self.inner.store_down.load(Ordering::Relaxed) {
            return true;
        }
        let up = self.inner.storage.reachable().await;
        if up && self.inner.store_down.swap(false, Ordering::Relaxed) {
            tracing::info!(endpoint = %self.inner.storage.endpoint, "the object store answers again; jobs start again");
        }
        up
    }

    /// After a job failed for a platform reason: whether the store is unreachable (then the
    /// dispatcher holds jobs back until it answers).
    pub(crate) async fn store_lost(&self) -> bool {
        if self.inner.storage.reachable().await {
            return false;
        }
        if !self.inner.store_down.swap(true, Ordering::Relaxed) {
            tracing::warn!(endpoint = %self.inner.storage.endpoint, "the object store is unreachable; jobs wait for it");
        }
        true
    }

    pub(crate) async fn woken(&self) {
        self.inner.wake.notified().await
    }
}

/// `<service>-<uuid>`, the service name cut to 16 characters when it has 25 or more (OSCAR's
/// rule, which keeps job names valid Kubernetes names).
pub fn job_name(service: &str) -> String {
    let prefix = if service.len() >= 25 {
        &service[..16]
    } else {
        service
    };
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

/// A run that can be told to stop ([`Jobs::stoppable`]).
pub(crate) struct StopSignal {
    jobs: Jobs,
    job: String,
    receiver: watch::Receiver<Option<String>>,
}

impl StopSignal {
    /// Resolves, with who asked, once the run is told to stop.
    pub(crate) async fn requested(&mut self) -> String {
        let asked = self
            .receiver
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|reason| reason.clone());
        match asked {
            Some(reason) => reason,
            // The sender lives as long as this signal: never.
            None => std::future::pending().await,
        }
    }
}

impl Drop for StopSignal {
    fn drop(&mut self) {
        self.jobs.stops().remove(&self.job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_follow_oscar() {
        let name = job_name("grayify");
        assert!(
            name.starts_with("grayify-") && name.len() == 8 + 36,
            "{name}"
        );
        let long = "a-service-name-of-25-char";
        assert_eq!(long.len(), 25);
        assert!(job_name(long).starts_with("a-service-name-o-"));
    }
}
