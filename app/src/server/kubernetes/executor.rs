//! The Kubernetes executor: submits each execution as a Job (two API calls), waits on the
//! shared watch for its end (no polling of the API), then reads the pod's log once and keeps
//! it with the job record, so it outlives the pod. Pods that cannot start fail the job with
//! the cluster's reason instead of leaving it pending.

use std::time::{Duration, Instant};

use supervisor::Report;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::ClusterSettings;
use super::cluster::Cluster;
use super::tracker::{Observation, Tracker, observe};
use crate::server::jobs::executor::{Execution, Executor, Finished};
use crate::server::jobs::logs::LogSink;
use crate::service::Service;

/// How often a waiting execution looks again without a change (for the timeouts).
const RECHECK: Duration = Duration::from_secs(2);
/// How long a finished Job's pod status may lag behind it.
const SETTLE: Duration = Duration::from_secs(10);

pub struct KubernetesExecutor {
    cluster: Cluster,
    tracker: Tracker,
}

impl KubernetesExecutor {
    /// Starts the shared watch; its tasks end when `stop` turns true.
    pub fn start(
        client: kube::Client,
        settings: ClusterSettings,
        stop: watch::Receiver<bool>,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let (tracker, tasks) = Tracker::start(client.clone(), &settings, stop);
        let cluster = Cluster::new(client, settings);
        (Self { cluster, tracker }, tasks)
    }

    /// Waits for the job's end as the watch sees it: the pod to read the log of, and the
    /// report. A job that cannot start is deleted and fails with the cluster's reason.
    async fn ended(
        &self,
        namespace: &str,
        job: &str,
        submitted: Instant,
    ) -> Result<(Option<String>, Result<Report, String>), String> {
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
                Observation::Broken(reason) => Some(reason),
                Observation::Waiting(why) if submitted.elapsed() > pending_timeout => {
                    Some(why.unwrap_or_else(|| {
                        "no pod was started (a quota or admission policy may refuse it: see the Job's events)"
                            .to_string()
                    }))
                }
                Observation::Waiting(_) | Observation::Running => None,
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
        result
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
        let namespace = self.cluster.namespace_of(service);
        let submitted = Instant::now();
        self.cluster.submit(service, &execution).await?;
        let (pod, report) = self.ended(&namespace, &execution.job, submitted).await?;
        let mut response = None;
        if pod.is_none() {
            // No pod output to show: the log says why.
            let reason = match &report {
                Ok(Report::Failed { reason, .. } | Report::Error { reason }) | Err(reason) => {
                    reason.as_str()
                }
                Ok(Report::Succeeded { .. }) => "the job succeeded, but its pod is gone",
            };
            let _ = log.send(format!("oscar: {reason}")).await;
        }
        if let Some(pod) = pod {
            match self.cluster.log(&namespace, &pod).await {
                Ok(text) => {
                    let lines: Vec<String> = text.lines().map(String::from).collect();
                    let lines = if execution.sync {
                        let (rest, body) = supervisor::response::unframe(lines);
                        response = body;
                        rest
                    } else {
                        lines
                    };
                    for line in lines {
                        if log.send(line).await.is_err() {
                            break;
                        }
                    }
                }
                // The outcome is known; only the output is lost.
                Err(err) => {
                    let _ = log.send(format!("oscar: {err}")).await;
                }
            }
        }
        let report = report?;
        if execution.sync && matches!(report, Report::Succeeded { .. }) && response.is_none() {
            return Err("the job succeeded but its response was not found in its log".into());
        }
        Ok(Finished { report, response })
    }

    async fn service_saved(
        &self,
        service: &Service,
        secrets: &[(String, String)],
    ) -> Result<(), String> {
        self.cluster.prepare_service(service, secrets).await
    }

    async fn service_deleted(&self, service: &Service) -> Result<(), String> {
        self.cluster.remove_service(service).await
    }
}
