//! One shared watch over the platform's Jobs and Pods (kube reflectors), so waiting for a job
//! costs no API call: each running execution is woken when an object of its own job changes,
//! and reads the cached objects. A lost watch resyncs by listing again; the stores then hold
//! the current state, so a completion during the gap is still seen.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use model::function::Report;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::objects::{JOB_CONTAINER, JOB_LABEL, MANAGED_BY, MANAGED_LABEL};
use super::{ClusterSettings, Namespacing};

/// Waiting reasons a pod does not get past by itself: the job fails at once.
const BROKEN: &[&str] = &[
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
];

#[derive(Clone)]
pub struct Tracker {
    jobs: Store<Job>,
    pods: Store<Pod>,
    waiters: Arc<Waiters>,
}

/// Per running job, what wakes its execution.
#[derive(Default)]
struct Waiters(Mutex<HashMap<String, Arc<Notify>>>);

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wake(&self, job: &str) {
        if let Some(notify) = self.lock().get(job) {
            // A stored permit: a change between two looks is never missed.
            notify.notify_one();
        }
    }

    fn wake_all(&self) {
        for notify in self.lock().values() {
            notify.notify_one();
        }
    }
}

impl Tracker {
    /// Starts the two watches (in the shared namespace, or cluster-wide with per-user
    /// namespaces); they end when `stop` turns true.
    pub fn start(
        client: kube::Client,
        settings: &ClusterSettings,
        stop: watch::Receiver<bool>,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let (jobs, jobs_writer) = reflector::store();
        let (pods, pods_writer) = reflector::store();
        let waiters = Arc::new(Waiters::default());
        let tasks = vec![
            tokio::spawn(follow(
                scoped::<Job>(&client, settings),
                jobs_writer,
                waiters.clone(),
                stop.clone(),
            )),
            tokio::spawn(follow(
                scoped::<Pod>(&client, settings),
                pods_writer,
                waiters.clone(),
                stop,
            )),
        ];
        (
            Self {
                jobs,
                pods,
                waiters,
            },
            tasks,
        )
    }

    /// What wakes the execution of `job` on each change of its objects; [`Self::forget`]
    /// when it ends.
    pub fn register(&self, job: &str) -> Arc<Notify> {
        self.waiters
            .lock()
            .entry(job.to_string())
            .or_default()
            .clone()
    }

    pub fn forget(&self, job: &str) {
        self.waiters.lock().remove(job);
    }

    /// The job and its pods as last seen.
    pub fn observe(&self, namespace: &str, job: &str) -> (Option<Arc<Job>>, Vec<Arc<Pod>>) {
        let found = self.jobs.get(&ObjectRef::new(job).within(namespace));
        let pods = self.pods.state_filter(|pod| {
            pod.metadata.namespace.as_deref() == Some(namespace) && job_of(pod) == Some(job)
        });
        (found, pods)
    }
}

fn scoped<K>(client: &kube::Client, settings: &ClusterSettings) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match settings.namespacing {
        Namespacing::Shared => Api::namespaced(client.clone(), &settings.namespace),
        Namespacing::PerUser => Api::all(client.clone()),
    }
}

fn job_of<K: Resource>(object: &K) -> Option<&str> {
    object
        .meta()
        .labels
        .as_ref()?
        .get(JOB_LABEL)
        .map(String::as_str)
}

/// Keeps one store in step with the cluster and wakes the executions whose objects changed.
async fn follow<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    waiters: Arc<Waiters>,
    mut stop: watch::Receiver<bool>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    // Jobs and their pods only (exposed services' pods carry no job label).
    let config =
        watcher::Config::default().labels(&format!("{MANAGED_LABEL}={MANAGED_BY},{JOB_LABEL}"));
    let events = reflector::reflector(writer, watcher(api, config).default_backoff());
    let mut events = std::pin::pin!(events);
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = stop.changed() => return,
        };
        match event {
            Some(Ok(watcher::Event::Apply(object) | watcher::Event::Delete(object))) => {
                if let Some(job) = job_of(&object) {
                    waiters.wake(job);
                }
            }
            // A (re)list replaced the store: anything may have changed.
            Some(Ok(watcher::Event::InitDone)) => waiters.wake_all(),
            Some(Ok(_)) => {}
            Some(Err(err)) => tracing::warn!(%err, "Kubernetes watch failed; retrying"),
            None => return,
        }
    }
}

/// Where a job stands, from its Job and pods as last seen. A pure function: tested on
/// recorded objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Not started; the cluster's reason when it gives one (image pull, scheduling).
    Waiting(Option<String>),
    /// Its container runs, in this pod.
    Running(String),
    /// It will never start (invalid image name, missing configuration): fail now.
    Broken(String),
    /// Over: the pod to read the log of, and the supervisor's report, or why there is none
    /// (a platform error, worth another attempt).
    Ended {
        pod: Option<String>,
        report: Result<Report, String>,
    },
    /// The Job is over but its pod's last status has not been seen: the two watches are
    /// separate streams, so it usually follows at once. If it never does (the pod was
    /// deleted), `otherwise` is the outcome.
    Settling {
        pod: Option<String>,
        otherwise: Result<Report, String>,
    },
}

pub fn observe(job: Option<&Job>, pods: &[Arc<Pod>]) -> Observation {
    let pod = pods
        .iter()
        .max_by_key(|pod| pod.metadata.creation_timestamp.clone());
    let pod_name = pod.and_then(|pod| pod.metadata.name.clone());
    let status = pod.and_then(|pod| pod.status.as_ref());
    let conditions = job
        .and_then(|j| j.status.as_ref())
        .and_then(|s| s.conditions.as_ref());
    let condition = |kind: &str| {
        conditions
            .into_iter()
            .flatten()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    let failed = condition("Failed");
    // The Job controller kills the pod at the deadline: its own end says nothing more.
    if failed.is_some_and(|c| c.reason.as_deref() == Some("DeadlineExceeded")) {
        return Observation::Ended {
            pod: pod_name,
            report: Ok(Report::Failed {
                exit_code: None,
                reason: "the job ran longer than its time limit and was stopped".into(),
                outputs: Vec::new(),
            }),
        };
    }
    let container = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|all| all.iter().find(|c| c.name == JOB_CONTAINER));
    if let Some(ended) = container
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref())
    {
        let mut report = report_of(ended);
        // A mount's sidecar uploads what the job wrote after it: the job ends with it.
        let sidecar = status
            .and_then(|s| s.init_container_statuses.as_ref())
            .and_then(|all| all.iter().find(|c| c.name == super::mount::CONTAINER));
        if let Some(sidecar) = sidecar {
            match sidecar.state.as_ref().and_then(|s| s.terminated.as_ref()) {
                None => return Observation::Running(pod_name.unwrap_or_default()),
                Some(done) if done.exit_code != 0 || sidecar.restart_count > 0 => {
                    // Started again, it left the job without its mount for a while.
                    if let Ok(report) = &mut report {
                        report.fail(format!(
                            "mount: the files written to it may not all be saved (its sidecar ended with {}, after {} restarts)",
                            done.exit_code, sidecar.restart_count
                        ));
                    }
                }
                Some(_) => {}
            }
        }
        return Observation::Ended {
            pod: pod_name,
            report,
        };
    }
    if let Some(failed) = failed {
        return Observation::Settling {
            pod: pod_name,
            otherwise: Ok(Report::Failed {
                exit_code: None,
                reason: format!(
                    "the cluster failed the job: {}",
                    failed.message.as_deref().unwrap_or("no reason given")
                ),
                outputs: Vec::new(),
            }),
        };
    }
    if condition("Complete").is_some() {
        return Observation::Settling {
            pod: pod_name,
            otherwise: Err("the job completed but its pod is gone, and with it the report".into()),
        };
    }
    match status.and_then(|s| s.phase.as_deref()) {
        Some("Running") => return Observation::Running(pod_name.unwrap_or_default()),
        Some("Failed") => {
            // Evicted, or lost with its node, before the container ended.
            let status = status.expect("a phase comes with a status");
            return Observation::Ended {
                pod: pod_name,
                report: Err(format!(
                    "the pod failed: {}",
                    status
                        .message
                        .as_deref()
                        .or(status.reason.as_deref())
                        .unwrap_or("no reason given")
                )),
            };
        }
        _ => {}
    }
    // Pending: why, if the cluster says.
    let waiting = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref());
    for waiting in waiting {
        let reason = waiting.reason.as_deref().unwrap_or_default();
        let text = match waiting.message.as_deref() {
            Some(message) => format!("{reason}: {message}"),
            None => reason.to_string(),
        };
        if BROKEN.contains(&reason) {
            return Observation::Broken(text);
        }
        if !matches!(reason, "" | "ContainerCreating" | "PodInitializing") {
            return Observation::Waiting(Some(text));
        }
    }
    let unschedulable = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False");
    Observation::Waiting(unschedulable.map(|c| {
        format!(
            "the pod cannot be scheduled: {}",
            c.message
                .as_deref()
                .or(c.reason.as_deref())
                .unwrap_or("no reason given")
        )
    }))
}

/// The report the supervisor left as the container's termination message.
fn report_of(ended: &ContainerStateTerminated) -> Result<Report, String> {
    if let Some(report) = ended
        .message
        .as_deref()
        .and_then(|m| serde_json::from_str::<Report>(m).ok())
    {
        return Ok(report);
    }
    if ended.reason.as_deref() == Some("OOMKilled") {
        return Ok(Report::Failed {
            exit_code: Some(ended.exit_code),
            reason: "the job used more memory than its limit and was killed".into(),
            outputs: Vec::new(),
        });
    }
    Err(format!(
        "the supervisor ended without a report (exit code {}{})",
        ended.exit_code,
        ended
            .reason
            .as_deref()
            .map(|r| format!(", {r}"))
            .unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn job(conditions: Value) -> Job {
        serde_json::from_value(json!({"metadata": {"name": "s-1", "namespace": "ns"},
            "status": {"conditions": conditions}}))
        .unwrap()
    }

    fn pod(status: Value) -> Vec<Arc<Pod>> {
        vec![Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "s-1-abcde", "namespace": "ns",
                "labels": {JOB_LABEL: "s-1"}}, "status": status}))
            .unwrap(),
        )]
    }

    fn container(state: Value) -> Value {
        json!([{"name": JOB_CONTAINER, "image": "alpine", "imageID": "", "ready": false,
                "restartCount": 0, "state": state}])
    }

    #[test]
    fn a_finished_container_ends_the_job_with_the_supervisors_report() {
        let report = json!({"status": "succeeded", "outputs": ["b/out.txt"]}).to_string();
        let pods = pod(json!({"phase": "Succeeded", "containerStatuses": container(
            json!({"terminated": {"exitCode": 0, "reason": "Completed", "message": report}}))}));
        assert_eq!(
            observe(Some(&job(json!([]))), &pods),
            Observation::Ended {
                pod: Some("s-1-abcde".into()),
                report: Ok(Report::Succeeded {
                    outputs: vec!["b/out.txt".into()]
                })
            }
        );
    }

    #[test]
    fn a_job_with_a_mount_ends_once_its_sidecar_has_uploaded_what_it_wrote() {
        let report = json!({"status": "succeeded", "outputs": []}).to_string();
        let restarted = |state: Value, restarts: u32| {
            pod(json!({"phase": "Running", "containerStatuses": container(
                json!({"terminated": {"exitCode": 0, "reason": "Completed", "message": report}})),
                "initContainerStatuses": [{"name": super::super::mount::CONTAINER,
                    "image": "rclone", "imageID": "", "ready": true, "restartCount": restarts,
                    "state": state}]}))
        };
        let sidecar = |state: Value| restarted(state, 0);
        let uploading = sidecar(json!({"running": {}}));
        assert_eq!(
            observe(None, &uploading),
            Observation::Running("s-1-abcde".into())
        );
        let saved = sidecar(json!({"terminated": {"exitCode": 0}}));
        assert!(matches!(
            observe(None, &saved),
            Observation::Ended {
                report: Ok(Report::Succeeded { .. }),
                ..
            }
        ));
        let lost = sidecar(json!({"terminated": {"exitCode": 137}}));
        let Observation::Ended {
            report: Ok(Report::Failed { reason, .. }),
            ..
        } = observe(None, &lost)
        else {
            panic!("uploads cut short fail the job");
        };
        assert!(reason.starts_with("mount: "), "{reason}");
        // Started again mid-job: the mount was gone for a while.
        let again = restarted(json!({"terminated": {"exitCode": 0}}), 1);
        assert!(matches!(
            observe(None, &again),
            Observation::Ended {
                report: Ok(Report::Failed { .. }),
                ..
            }
        ));
    }

    #[test]
    fn out_of_memory_and_a_missing_report_are_told_apart() {
        let oom = pod(json!({"phase": "Failed", "containerStatuses": container(
            json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}))}));
        let Observation::Ended {
            report: Ok(Report::Failed { reason, .. }),
            ..
        } = observe(None, &oom)
        else {
            panic!("OOM is the script's failure");
        };
        assert!(reason.contains("more memory than its limit"));
        let silent = pod(json!({"phase": "Failed", "containerStatuses": container(
            json!({"terminated": {"exitCode": 127, "reason": "Error"}}))}));
        let Observation::Ended {
            report: Err(reason),
            ..
        } = observe(None, &silent)
        else {
            panic!("no report is a platform error");
        };
        assert!(reason.contains("exit code 127"), "{reason}");
    }

    #[test]
    fn a_deadline_fails_the_job_even_without_a_pod() {
        let deadline =
            job(json!([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]));
        let Observation::Ended {
            pod: None,
            report: Ok(Report::Failed { reason, .. }),
        } = observe(Some(&deadline), &[])
        else {
            panic!("a failed Job ends the job");
        };
        assert!(reason.contains("time limit"));
    }

    #[test]
    fn a_finished_job_waits_for_its_pods_last_status() {
        let complete = job(json!([{"type": "Complete", "status": "True"}]));
        let running = pod(json!({"phase": "Running", "containerStatuses": container(
            json!({"running": {}}))}));
        let Observation::Settling {
            otherwise: Err(_), ..
        } = observe(Some(&complete), &running)
        else {
            panic!("the pod's status is still to come");
        };
        let failed = job(json!([{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]));
        let report =
            json!({"status": "failed", "exit_code": 3, "reason": "the script exited with code 3",
            "outputs": []})
            .to_string();
        let ended = pod(json!({"phase": "Failed", "containerStatuses": container(
            json!({"terminated": {"exitCode": 3, "reason": "Error", "message": report}}))}));
        assert!(matches!(
            observe(Some(&failed), &running),
            Observation::Settling {
                otherwise: Ok(Report::Failed { .. }),
                ..
            }
        ));
        // Once it comes, the supervisor's own report wins over the Job's condition.
        assert!(matches!(
            observe(Some(&failed), &ended),
            Observation::Ended {
                report: Ok(Report::Failed {
                    exit_code: Some(3),
                    ..
                }),
                ..
            }
        ));
    }

    #[test]
    fn pending_pods_say_why_and_hopeless_ones_break() {
        assert_eq!(
            observe(Some(&job(json!([]))), &[]),
            Observation::Waiting(None)
        );
        let pulling = pod(json!({"phase": "Pending", "containerStatuses": container(
            json!({"waiting": {"reason": "ImagePullBackOff",
                   "message": "Back-off pulling image \"nope:1\""}}))}));
        assert_eq!(
            observe(None, &pulling),
            Observation::Waiting(Some(
                "ImagePullBackOff: Back-off pulling image \"nope:1\"".into()
            ))
        );
        let invalid = pod(json!({"phase": "Pending", "containerStatuses": container(
            json!({"waiting": {"reason": "InvalidImageName", "message": "bad ref"}}))}));
        assert_eq!(
            observe(None, &invalid),
            Observation::Broken("InvalidImageName: bad ref".into())
        );
        let unschedulable = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled",
            "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu."}]}),
        );
        assert_eq!(
            observe(None, &unschedulable),
            Observation::Waiting(Some(
                "the pod cannot be scheduled: 0/3 nodes are available: 3 Insufficient cpu.".into()
            ))
        );
        let creating = pod(json!({"phase": "Pending", "containerStatuses": container(
            json!({"waiting": {"reason": "ContainerCreating"}}))}));
        assert_eq!(observe(None, &creating), Observation::Waiting(None));
        let running = pod(json!({"phase": "Running", "containerStatuses": container(
            json!({"running": {}}))}));
        assert_eq!(
            observe(None, &running),
            Observation::Running("s-1-abcde".into())
        );
    }

    #[test]
    fn an_evicted_pod_is_a_platform_error() {
        let evicted = pod(json!({"phase": "Failed", "reason": "Evicted",
            "message": "The node was low on resource: memory."}));
        assert_eq!(
            observe(None, &evicted),
            Observation::Ended {
                pod: Some("s-1-abcde".into()),
                report: Err("the pod failed: The node was low on resource: memory.".into())
            }
        );
    }
}
