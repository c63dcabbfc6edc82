//! The Kubernetes executor: submits each execution as a Job (two API calls), waits on the
//! shared watch for its end (no polling of the API), and keeps the pod's output with the job
//! record, so it outlives the pod: followed live while the container runs (one streaming
//! request), or read once at the end when that was not possible. Pods that cannot start fail
//! the job with the cluster's reason instead of leaving it pending.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::AsyncReadExt;

use model::function::Report;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::ClusterSettings;
use super::cluster::Cluster;
use super::tracker::{Observation, Tracker, observe};
use crate::jobs::executor::{
    Execution, Executor, Finished, Requested, StorageAccess, refused, secret_variables,
};
use crate::jobs::logs::{self, Line, LineSplitter, LogSink, Stream, send_all};
use crate::jobs::rclone;
use model::AppResult;
use model::service::Service;
use model::system::NodeStatus;

/// How often a waiting execution looks again without a change (for the timeouts).
const RECHECK: Duration = Duration::from_secs(2);
/// How long a finished Job's pod status may lag behind it.
const SETTLE: Duration = Duration::from_secs(10);
/// How long a followed log may take to end after its container did.
const FOLLOW_GRACE: Duration = Duration::from_secs(5);

pub struct KubernetesExecutor {
    cluster: Cluster,
    tracker: Tracker,
    /// Where instances mount a folder of the platform's store from.
    storage: StorageAccess,
}

impl KubernetesExecutor {
    /// Starts the shared watch; its tasks end when `stop` turns true.
    pub fn start(
        client: kube::Client,
        settings: ClusterSettings,
        storage: StorageAccess,
        stop: watch::Receiver<bool>,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let (tracker, tasks) = Tracker::start(client.clone(), &settings, stop);
        let cluster = Cluster::new(client, settings);
        let executor = Self {
            cluster,
            tracker,
            storage,
        };
        (executor, tasks)
    }

    /// The cluster's API, for what runs beside jobs (exposed services).
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Waits for the job's end as the watch sees it: the pod to read the log of, and the
    /// report. A job that cannot start is deleted and fails with the cluster's reason. Once
    /// its container runs, its output goes to `live` as it is printed.
    async fn ended(
        &self,
        namespace: &str,
        job: &str,
        submitted: Instant,
        live: Option<&LogSink>,
    ) -> Result<(Option<String>, Result<Report, String>, Option<Follower>), String> {
        let mut follower = None;
        let wake = self.tracker.register(job);
        let pending_timeout = self.cluster.settings().pending_timeout;
        let mut seen = false;
        let mut settling_since: Option<Instant> = None;
        let result = loop {
            let (found, pods) = self.tracker.observe(namespace, job);
            if found.is_none() && seen {
                break Err("the Job was deleted from the cluster before it ended".to_string());
            }
            seen |= found.is_some();
            let cannot_start = match observe(found.as_deref(), &pods) {
                Observation::Ended { pod, report } => break Ok((pod, report)),
                Observation::Settling { pod, otherwise } => {
                    if settling_since.get_or_insert_with(Instant::now).elapsed() > SETTLE {
                        break Ok((pod, otherwise));
                    }
                    None
                }
                Observation::Running(pod) => {
                    if let (None, Some(live)) = (&follower, live) {
                        follower = Some(Follower::start(&self.cluster, namespace, &pod, live));
                    }
                    None
                }
                Observation::Broken(reason) => Some(reason),
                Observation::Waiting(why) if submitted.elapsed() > pending_timeout => {
                    Some(match why {
                        Some(why) => why,
                        // No pod at all: the Job's events say why (quota, admission).
                        None => self
                            .cluster
                            .job_warning(namespace, job)
                            .await
                            .unwrap_or_else(|| {
                                "no pod was started, and the cluster gave no reason".to_string()
                            }),
                    })
                }
                Observation::Waiting(_) => None,
            };
            if let Some(why) = cannot_start {
                if let Err(err) = self.cluster.remove_job(namespace, job).await {
                    tracing::warn!(%job, %err, "cannot delete a job that will not start");
                }
                let reason = format!(
                    "the job could not start within {}s: {why}",
                    submitted.elapsed().as_secs()
                );
                break Ok((
                    None,
                    Ok(Report::Failed {
                        exit_code: None,
                        reason,
                        outputs: Vec::new(),
                    }),
                ));
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
        };
        self.tracker.forget(job);
        result.map(|(pod, report)| (pod, report, follower))
    }
}

/// A pod's output lines, timed as they arrive: the container runtime merges stdout and
/// stderr, so all count as stdout.
fn pod_lines(lines: &mut Vec<String>) -> impl Iterator<Item = Line> + use<'_> {
    lines.drain(..).map(|text| Line::now(Stream::Out, text))
}

/// Sends a running pod's output to the job's log as it is printed.
struct Follower {
    task: JoinHandle<bool>,
    /// Lines sent so far.
    sent: Arc<AtomicUsize>,
}

impl Follower {
    fn start(cluster: &Cluster, namespace: &str, pod: &str, log: &LogSink) -> Self {
        let sent = Arc::new(AtomicUsize::new(0));
        let (cluster, namespace, pod, log) = (
            cluster.clone(),
            namespace.to_string(),
            pod.to_string(),
            log.clone(),
        );
        let counter = sent.clone();
        let task = tokio::spawn(async move {
            let Ok(reader) = cluster.follow_log(&namespace, &pod).await else {
                return false;
            };
            let mut reader = std::pin::pin!(reader);
            let mut splitter = LineSplitter::default();
            let mut lines = Vec::new();
            let mut buffer = vec![0; 16 * 1024];
            loop {
                match reader.read(&mut buffer).await {
                    Ok(0) => break,
                    Ok(read) => splitter.push(&buffer[..read], &mut lines),
                    Err(_) => return false,
                }
                counter.fetch_add(lines.len(), Ordering::Relaxed);
                if !send_all(pod_lines(&mut lines), &log).await {
                    return false;
                }
            }
            lines.extend(splitter.finish());
            counter.fetch_add(lines.len(), Ordering::Relaxed);
            send_all(pod_lines(&mut lines), &log).await
        });
        Self { task, sent }
    }

    /// Lines already in the job's log when the whole output was followed, otherwise how many
    /// to skip of a final read. The stream ends with the container; a stalled one is cut.
    async fn finish(mut self) -> (bool, usize) {
        let whole = matches!(
            tokio::time::timeout(FOLLOW_GRACE, &mut self.task).await,
            Ok(Ok(true))
        );
        self.task.abort();
        (whole, self.sent.load(Ordering::Relaxed))
    }
}

#[async_trait::async_trait]
impl Executor for KubernetesExecutor {
    async fn run(
        &self,
        service: &Service,
        execution: Execution,
        log: LogSink,
    ) -> Result<Finished, String> {
        if let Some(why) = super::mount::unmountable(&execution, self.cluster.settings()) {
            return Ok(refused(&log, why).await);
        }
        let namespace = self.cluster.namespace_of(service);
        let submitted = Instant::now();
        self.cluster.submit(service, &execution).await?;
        // A synchronous run's response is framed at the end of its output: read whole.
        let live = (!execution.sync).then_some(&log);
        let (pod, report, follower) = self
            .ended(&namespace, &execution.job, submitted, live)
            .await?;
        let (followed, skip) = match follower {
            Some(follower) => follower.finish().await,
            None => (false, 0),
        };
        let mut response = None;
        if pod.is_none() {
            // No pod output to show: the log says why.
            let reason = match &report {
                Ok(Report::Failed { reason, .. } | Report::Error { reason }) | Err(reason) => {
                    reason.as_str()
                }
                Ok(Report::Succeeded { .. }) => "the job succeeded, but its pod is gone",
            };
            let _ = log.send(logs::note(reason)).await;
        }
        if let Some(pod) = pod.filter(|_| !followed) {
            match self.cluster.log(&namespace, &pod).await {
                Ok(text) => {
                    // Cut as the followed output was, so that `skip` counts the same lines.
                    let mut splitter = LineSplitter::default();
                    let mut lines = Vec::new();
                    splitter.push(text.as_bytes(), &mut lines);
                    lines.extend(splitter.finish());
                    let lines: Vec<String> = lines.into_iter().skip(skip).collect();
                    let mut lines = if execution.sync {
                        let (rest, body) = model::function::response::unframe(lines);
                        response = body;
                        rest
                    } else {
                        lines
                    };
                    send_all(pod_lines(&mut lines), &log).await;
                }
                // The outcome is known; only the output is lost.
                Err(err) => {
                    let _ = log.send(logs::note(&err)).await;
                }
            }
        }
        let report = report?;
        if execution.sync && matches!(report, Report::Succeeded { .. }) && response.is_none() {
            return Err("the job succeeded but its response was not found in its log".into());
        }
        Ok(Finished { report, response })
    }

    async fn stop(&self, service: &Service, job: &str) -> Result<(), String> {
        self.cluster
            .remove_job(&self.cluster.namespace_of(service), job)
            .await
    }

    async fn unstarted(&self, service: &Service, job: &str) -> Option<String> {
        let (found, pods) = self
            .tracker
            .observe(&self.cluster.namespace_of(service), job);
        // Not seen yet: submitted a moment ago, or not at all.
        let found = found?;
        match observe(Some(&found), &pods) {
            Observation::Waiting(why) => {
                Some(why.unwrap_or_else(|| "the cluster has made no pod for it yet".into()))
            }
            _ => None,
        }
    }

    async fn check_service(&self, service: &Service) -> AppResult<()> {
        super::exposed::check(service, self.cluster.settings())?;
        if model::service::mount::Mount::of(service).is_some()
            && self.cluster.settings().rclone_image.is_none()
        {
            return Err(model::AppError::bad_request(
                "mount",
                "this cluster makes no mounts: its operator turns them on with OSCAR_KUBE_RCLONE_IMAGE (privileged rclone sidecars)",
            ));
        }
        self.cluster.check_pull_secrets(service).await
    }

    async fn nodes(&self, _running: Requested) -> Result<Vec<NodeStatus>, String> {
        self.cluster.nodes().await
    }

    async fn kubernetes_version(&self) -> Option<String> {
        self.cluster.version().await
    }

    async fn service_saved(
        &self,
        service: &Service,
        secrets: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let variables = secret_variables(secrets);
        let mount = rclone::for_instances(service, secrets, &self.storage).transpose()?;
        let mount = mount
            .as_ref()
            .map(super::mount::secret_entries)
            .unwrap_or_default();
        self.cluster.prepare_service(service, &variables).await?;
        // Before the pods that read it; deleted only once none does.
        if !mount.is_empty() {
            self.cluster
                .prepare_instances_mount(service, &mount)
                .await?;
        }
        // A change of either rolls the instances.
        let mut rolled = variables;
        rolled.extend(mount.iter().cloned());
        self.cluster.apply_exposed(service, &rolled).await?;
        self.cluster.apply_workers(service, &rolled).await?;
        if mount.is_empty() {
            self.cluster.prepare_instances_mount(service, &[]).await?;
        }
        Ok(())
    }

    fn volume_limits(&self) -> crate::volumes::Limits {
        self.cluster.settings().volume_limits
    }

    fn volume_location(&self, owner: &str, name: &str) -> (String, String) {
        let settings = self.cluster.settings();
        (
            super::objects::namespace_of(settings, owner),
            super::objects::claim_name(settings, owner, name),
        )
    }

    async fn create_volume(&self, owner: &str, name: &str, bytes: u64) -> Result<(), String> {
        self.cluster.create_volume(owner, name, bytes).await
    }

    async fn delete_volume(&self, owner: &str, name: &str) -> Result<(), String> {
        self.cluster.delete_volume(owner, name).await
    }

    async fn volume_phase(&self, owner: &str, name: &str) -> (String, String) {
        self.cluster.volume_phase(owner, name).await
    }

    async fn service_deleted(&self, service: &Service) -> Result<(), String> {
        if service.is_exposed() {
            self.cluster.remove_exposed(service).await?;
        }
        if super::workers::has_workers(service) {
            self.cluster.remove_workers(service).await?;
        }
        self.cluster.remove_service(service).await
    }
}
