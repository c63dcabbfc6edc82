//! Warm workers of synchronous services (`synchronous.min_scale`) on Kubernetes: a
//! Deployment of pods in the service's image, each running the supervisor's serve mode
//! (`supervisor/src/serve/cluster.rs`), behind a Service. Their objects ([`objects`]) are
//! applied on every save of the service and deleted with it (or when `min_scale` goes back to
//! 0).
//!
//! [`Workers::run`] sends a `/run` job to them over TCP ([`model::function::work`]): the
//! Service picks a pod; a pod busy with another request answers so at once and the request
//! is tried again (another pod, or the same once free) for up to [`BUSY_FOR`]. The
//! Deployment starts with `min_scale` pods; when this server has more requests in flight
//! than pods are ready it asks for one more per request, up to `max_scale` (as the embedded
//! workers scale); pods beyond `min_scale` go after [`crate::exposed::IDLE_AFTER`] without
//! requests, recorded on the Deployment for every server to read. A request no worker takes
//! (none ready yet, all busy for too long, a worker that refuses) runs as a Job, as without
//! workers: the caller still gets an answer.

pub mod objects;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service as KubeService};
use kube::api::{Api, Patch, PatchParams, PostParams};
use model::Timestamp;
use model::function::Report;
use model::function::log::{Line, LineSplitter, MAX_MARKED_LINE};
use model::function::work::{ClusterWork, Frame};
use model::service::Service;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::cluster::{Cluster, refused, retried};
use super::exposed::objects::{LAST_REQUEST, mount_volume, revision};
use super::exposed::{apply, delete};
use crate::exposed::{IDLE_AFTER, MAX_WORKERS};
use crate::jobs::executor::{EventBody, Execution, Finished};
use crate::jobs::logs::{LogSink, note, send_all};

/// How long a request keeps trying workers that are all busy before it runs as a Job.
pub const BUSY_FOR: Duration = Duration::from_secs(10);
/// How long what the cluster said of the workers (address, token, ready pods) is used.
const KNOWN_FOR: Duration = Duration::from_secs(2);
const CONNECT_WITHIN: Duration = Duration::from_secs(5);
/// How often a server records that it uses workers beyond `min_scale`.
const RECORD_EVERY: Duration = Duration::from_secs(60);
/// Beyond the script's time limit: the supervisor's uploads and report.
const GRACE: Duration = Duration::from_secs(60);

/// How a service's workers are reached, as the cluster says.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub address: SocketAddr,
    pub token: String,
    /// Pods ready, and asked for.
    pub ready: i32,
    pub replicas: i32,
}

impl Cluster {
    /// Makes the service's worker objects match it: applied while it has
    /// `synchronous.min_scale` (and is not exposed, whose instances serve it instead),
    /// deleted otherwise. A Deployment scaled up keeps its replicas; `secrets` roll its pods
    /// when they change.
    pub async fn apply_workers(
        &self,
        service: &Service,
        secrets: &[(String, String)],
    ) -> Result<(), String> {
        let ns = self.namespace_of(service);
        let name = objects::name(&service.name);
        let existing = self.workers_deployment(service).await?;
        if !has_workers(service) {
            if existing.is_some() {
                self.remove_workers(service).await?;
            }
            return Ok(());
        }
        let tokens: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
        let found = retried(|| tokens.get_opt(&name))
            .await
            .map_err(|e| refused("read the workers' Secret", e))?;
        if found.is_none() {
            // Made once and kept: every server reads it back.
            let token = hex::encode(rand::random::<[u8; 32]>());
            let secret = objects::token_secret(service, &ns, &token);
            match tokens.create(&PostParams::default(), &secret).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.is_already_exists() => {}
                Err(err) => return Err(refused("create the workers' Secret", err)),
            }
        }
        let services: Api<KubeService> = Api::namespaced(self.client.clone(), &ns);
        let front = objects::service(service, self.settings(), &ns);
        apply(&services, &name, &front, "apply the workers' Service").await?;
        let (min, max) = scale_of(service);
        let replicas = existing
            .as_ref()
            .and_then(|d| d.spec.as_ref()?.replicas)
            .unwrap_or(min)
            .clamp(min, max);
        let mut deployment = objects::deployment(
            service,
            self.settings(),
            &ns,
            replicas,
            &revision(service, secrets),
        );
        if let Some(volume) = model::volumes::ServiceVolume::of(service) {
            let claim = super::objects::claim_name(
                self.settings(),
                &service.owner,
                &volume.volume_name(&service.name),
            );
            mount_volume(&mut deployment, &claim, &volume.mount_path);
        }
        super::mount::add_to_instances(&mut deployment, service, self.settings());
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
        apply(
            &deployments,
            &name,
            &deployment,
            "apply the workers' Deployment",
        )
        .await
    }

    /// Deletes the service's workers, their Service and their token.
    pub async fn remove_workers(&self, service: &Service) -> Result<(), String> {
        let ns = self.namespace_of(service);
        let name = objects::name(&service.name);
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
        delete(&deployments, &name, "delete the workers' Deployment").await?;
        let services: Api<KubeService> = Api::namespaced(self.client.clone(), &ns);
        delete(&services, &name, "delete the workers' Service").await?;
        let tokens: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
        delete(&tokens, &name, "delete the workers' Secret").await
    }

    async fn workers_deployment(&self, service: &Service) -> Result<Option<Deployment>, String> {
        let deployments: Api<Deployment> =
            Api::namespaced(self.client.clone(), &self.namespace_of(service));
        let name = objects::name(&service.name);
        retried(|| deployments.get_opt(&name))
            .await
            .map_err(|e| refused("read the workers' Deployment", e))
    }

    /// Where the workers answer, their token, and how many are ready.
    pub async fn workers_endpoint(&self, service: &Service) -> Result<Endpoint, String> {
        let ns = self.namespace_of(service);
        let name = objects::name(&service.name);
        let missing = || format!("the service {} has no workers yet", service.name);
        let deployment = self
            .workers_deployment(service)
            .await?
            .ok_or_else(missing)?;
        let services: Api<KubeService> = Api::namespaced(self.client.clone(), &ns);
        let spec = retried(|| services.get_opt(&name))
            .await
            .map_err(|e| refused("read the workers' Service", e))?
            .ok_or_else(missing)?
            .spec
            .unwrap_or_default();
        let ip = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let port = spec.ports.unwrap_or_default().first().map(|p| p.port);
        let address = match (ip, port.and_then(|p| u16::try_from(p).ok())) {
            (Some(ip), Some(port)) => SocketAddr::new(ip, port),
            _ => return Err(format!("the Service {name} has no cluster address yet")),
        };
        let tokens: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
        let token = retried(|| tokens.get_opt(&name))
            .await
            .map_err(|e| refused("read the workers' Secret", e))?
            .and_then(|secret| secret.data?.remove(objects::TOKEN_KEY))
            .and_then(|bytes| String::from_utf8(bytes.0).ok())
            .ok_or_else(|| format!("the Secret {name} has no token"))?;
        Ok(Endpoint {
            address,
            token,
            ready: deployment
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0),
            replicas: deployment
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(0),
        })
    }

    /// Asks for at least `replicas` workers (never fewer than another server asked for),
    /// recording the use for [`Self::scale_idle_workers`]; 0 records the use only.
    pub async fn scale_workers(&self, service: &Service, replicas: i32) -> Result<(), String> {
        let deployments: Api<Deployment> =
            Api::namespaced(self.client.clone(), &self.namespace_of(service));
        let name = objects::name(&service.name);
        // Only on the Deployment as read: a change by another server in between is read again.
        for _ in 0..3 {
            let Some(current) = self.workers_deployment(service).await? else {
                return Ok(());
            };
            let asked = current.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let mut patch = serde_json::json!({"metadata": {
                "resourceVersion": current.metadata.resource_version,
                "annotations": {LAST_REQUEST: Timestamp::now().rfc3339()}}});
            if replicas > asked {
                patch["spec"] = serde_json::json!({"replicas": replicas});
            }
            match deployments
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(kube::Error::Api(status)) if status.is_not_found() => return Ok(()),
                Err(err) => return Err(refused("scale the workers", err)),
            }
        }
        Err("the workers' Deployment kept changing while being scaled".into())
    }

    /// Takes the workers back to `min_scale` when no server recorded a request for
    /// `idle_after`; true when it did.
    pub async fn scale_idle_workers(
        &self,
        service: &Service,
        idle_after: Duration,
    ) -> Result<bool, String> {
        let Some(deployment) = self.workers_deployment(service).await? else {
            return Ok(false);
        };
        let (min, _) = scale_of(service);
        let replicas = deployment.spec.as_ref().and_then(|s| s.replicas);
        if replicas.is_none_or(|r| r <= min) {
            return Ok(false);
        }
        self.scale_down_idle(service, &deployment, min, idle_after)
            .await
    }
}

/// Whether the service has warm workers on the cluster.
pub fn has_workers(service: &Service) -> bool {
    service.synchronous.min_scale > 0 && !service.is_exposed()
}

/// `min_scale` and `max_scale` as replicas (no `max_scale`: [`MAX_WORKERS`], as embedded).
fn scale_of(service: &Service) -> (i32, i32) {
    let sync = &service.synchronous;
    let max = match sync.max_scale {
        0 => sync.min_scale.max(MAX_WORKERS),
        max => max.max(sync.min_scale),
    };
    let replicas = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    (replicas(sync.min_scale), replicas(max))
}

/// What this server knows of each service's workers.
#[derive(Debug, Default)]
pub struct Workers {
    known: Mutex<HashMap<String, Known>>,
}

#[derive(Debug, Default)]
struct Known {
    endpoint: Option<(Endpoint, Instant)>,
    in_flight: Arc<AtomicUsize>,
    recorded: Option<Instant>,
}

/// One request of this server on a service's workers, until dropped.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How one try at a worker went.
enum Attempt {
    Done(Result<Finished, String>),
    Busy,
    /// Refused, or not reached, before the request was taken: why.
    NotTaken(String),
}

impl Workers {
    /// Whether `execution` goes to the service's workers.
    pub fn serves(service: &Service, execution: &Execution) -> bool {
        execution.sync && has_workers(service)
    }

    /// Runs a `/run` job on a worker of the service, its output going to `log`; the
    /// execution back when no worker took it (it then runs as a Job).
    pub async fn run(
        &self,
        cluster: &Cluster,
        service: &Service,
        execution: Execution,
        log: &LogSink,
    ) -> Result<Result<Finished, String>, Execution> {
        let name = service.name.as_str();
        let endpoint = match self.endpoint(cluster, service, false).await {
            Ok(endpoint) if endpoint.ready > 0 => endpoint,
            Ok(_) => return Err(declined(log, execution, "none is ready").await),
            Err(err) => {
                tracing::warn!(service = %name, %err, "cannot reach the warm workers");
                return Err(declined(log, execution, &err).await);
            }
        };
        let (in_flight, record) = self.with_known(name, |known| {
            let record = known.recorded.is_none_or(|at| at.elapsed() >= RECORD_EVERY);
            if record {
                known.recorded = Some(Instant::now());
            }
            known.in_flight.fetch_add(1, Ordering::Relaxed);
            (InFlight(known.in_flight.clone()), record)
        });
        self.scale_for(cluster, service, &endpoint, record).await;
        let work = ClusterWork {
            token: endpoint.token.clone(),
            job: execution.job.clone(),
            env: execution.env.clone(),
            timeout_secs: execution.timeout.as_secs().max(1),
            memory: execution.memory,
            config: serde_norway::to_string(&execution.config).unwrap_or_default(),
            script: execution.script.clone(),
            access_key: execution.store_keys.0.clone(),
            secret_key: execution.store_keys.1.clone(),
            event_len: 0,
        };
        let limit = execution.timeout + GRACE;
        let started = Instant::now();
        let mut address = endpoint.address;
        let mut work = work;
        let mut refreshed = false;
        let why = loop {
            let attempt = attempt(address, &mut work, &execution.event, log, limit).await;
            let why = match attempt {
                Attempt::Done(result) => {
                    drop(in_flight);
                    return Ok(result.map(|finished| Finished {
                        response: finished.response.filter(|_| execution.sync),
                        ..finished
                    }));
                }
                Attempt::Busy if started.elapsed() < BUSY_FOR => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Attempt::Busy => format!("every worker stayed busy for {}s", BUSY_FOR.as_secs()),
                Attempt::NotTaken(why) => why,
            };
            // Made again since (a new token, a new address): read once more.
            if refreshed {
                break why;
            }
            refreshed = true;
            match self.endpoint(cluster, service, true).await {
                Ok(fresh) if fresh.ready > 0 => {
                    address = fresh.address;
                    work.token = fresh.token;
                }
                _ => break why,
            }
        };
        drop(in_flight);
        tracing::info!(service = %name, job = %execution.job, %why, "a /run job goes to a Job");
        Err(declined(log, execution, &why).await)
    }

    /// More workers when this server has more requests in flight than are ready, up to
    /// `max_scale`; the use recorded (at most every [`RECORD_EVERY`]) while there are more
    /// than `min_scale`, so they are not taken back while used.
    async fn scale_for(
        &self,
        cluster: &Cluster,
        service: &Service,
        endpoint: &Endpoint,
        record: bool,
    ) {
        let (min, max) = scale_of(service);
        let in_flight = self.with_known(&service.name, |k| k.in_flight.load(Ordering::Relaxed));
        let wanted = i32::try_from(in_flight).unwrap_or(i32::MAX).min(max);
        let result = if wanted > endpoint.replicas && wanted > endpoint.ready {
            self.with_known(&service.name, |k| {
                if let Some((known, _)) = &mut k.endpoint {
                    known.replicas = wanted;
                }
            });
            tracing::info!(service = %service.name, replicas = wanted, "more warm workers");
            cluster.scale_workers(service, wanted).await
        } else if record && endpoint.replicas > min {
            cluster.scale_workers(service, 0).await
        } else {
            Ok(())
        };
        if let Err(err) = result {
            tracing::warn!(service = %service.name, %err, "cannot scale the warm workers");
        }
    }

    /// The service's workers as last read, read again when older than [`KNOWN_FOR`] (or
    /// when `fresh`).
    async fn endpoint(
        &self,
        cluster: &Cluster,
        service: &Service,
        fresh: bool,
    ) -> Result<Endpoint, String> {
        let known = self.with_known(&service.name, |k| k.endpoint.clone());
        if let Some((endpoint, at)) = known
            && !fresh
            && at.elapsed() < KNOWN_FOR
        {
            return Ok(endpoint);
        }
        let endpoint = cluster.workers_endpoint(service).await?;
        self.with_known(&service.name, |k| {
            k.endpoint = Some((endpoint.clone(), Instant::now()));
        });
        Ok(endpoint)
    }

    /// Whether this server has requests in flight on the service's workers.
    pub fn busy(&self, service: &str) -> bool {
        self.known
            .lock()
            .unwrap()
            .get(service)
            .is_some_and(|k| k.in_flight.load(Ordering::Relaxed) > 0)
    }

    fn with_known<T>(&self, name: &str, f: impl FnOnce(&mut Known) -> T) -> T {
        f(self
            .known
            .lock()
            .unwrap()
            .entry(name.to_string())
            .or_default())
    }

    /// Takes the workers of services idle for [`IDLE_AFTER`] back to `min_scale`.
    pub async fn scale_idle(&self, cluster: &Cluster, services: &[Service]) {
        for service in services.iter().filter(|s| has_workers(s)) {
            // In use here (a request may run for long): recorded for the other servers.
            if self.busy(&service.name) {
                if let Err(err) = cluster.scale_workers(service, 0).await {
                    tracing::warn!(service = %service.name, %err, "cannot record the workers' use");
                }
                continue;
            }
            match cluster.scale_idle_workers(service, IDLE_AFTER).await {
                Ok(true) => {
                    self.with_known(&service.name, |k| k.endpoint = None);
                    tracing::info!(service = %service.name, "idle warm workers taken back");
                }
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(service = %service.name, %err, "cannot idle the workers")
                }
            }
        }
    }
}

/// The execution back for a Job, its log saying why no worker took it.
async fn declined(log: &LogSink, execution: Execution, why: &str) -> Execution {
    let _ = log
        .send(note(format!(
            "no warm worker took the request ({why}): it runs as a job"
        )))
        .await;
    execution
}

/// One try: the request to a worker, then its output to `log` until its report.
async fn attempt(
    address: SocketAddr,
    work: &mut ClusterWork,
    event: &EventBody,
    log: &LogSink,
    limit: Duration,
) -> Attempt {
    let not_taken = |e: &dyn std::fmt::Display| Attempt::NotTaken(format!("{address}: {e}"));
    let stream = match tokio::time::timeout(CONNECT_WITHIN, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return not_taken(&e),
        Err(_) => return not_taken(&"no answer"),
    };
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    let mut frames = Frames {
        reader,
        buffer: Vec::new(),
        chunk: vec![0; 64 * 1024],
    };
    let (mut event_file, event_text) = match event {
        EventBody::Text(text) => (None, Some(text.as_bytes())),
        EventBody::File(path) => match tokio::fs::File::open(path).await {
            Ok(file) => (Some(file), None),
            Err(e) => return Attempt::Done(Err(format!("cannot read the job's event: {e}"))),
        },
    };
    work.event_len = match (&event_file, event_text) {
        (Some(file), _) => match file.metadata().await {
            Ok(meta) => meta.len(),
            Err(e) => return Attempt::Done(Err(format!("cannot read the job's event: {e}"))),
        },
        (None, text) => text.map_or(0, |t| t.len() as u64),
    };
    let mut header = serde_json::to_vec(&*work).unwrap_or_default();
    header.push(b'\n');
    let handshake = async {
        writer.write_all(&header).await.map_err(|e| e.to_string())?;
        frames.next().await
    };
    match tokio::time::timeout(CONNECT_WITHIN, handshake).await {
        Ok(Ok(Some(Frame::Accepted))) => {}
        Ok(Ok(Some(Frame::Busy))) => return Attempt::Busy,
        Ok(Ok(Some(Frame::Refused(why)))) => return not_taken(&format!("refused: {why}")),
        Ok(Ok(Some(_))) => return not_taken(&"an answer out of order"),
        Ok(Ok(None)) => return not_taken(&"closed the connection"),
        Ok(Err(e)) => return not_taken(&e),
        Err(_) => return not_taken(&"no answer to the request"),
    }
    let sent = match (&mut event_file, event_text) {
        (Some(file), _) => {
            let mut exact = file.take(work.event_len);
            tokio::io::copy(&mut exact, &mut writer).await.map(|_| ())
        }
        (None, text) => writer.write_all(text.unwrap_or_default()).await,
    };
    if let Err(e) = sent {
        return Attempt::Done(Err(format!("lost the warm worker sending the event: {e}")));
    }
    let answered = async {
        let mut splitter = LineSplitter::with_limit(MAX_MARKED_LINE);
        let mut response = Vec::new();
        loop {
            let frame = frames
                .next()
                .await
                .map_err(|e| format!("lost the warm worker: {e}"))?
                .ok_or("the warm worker ended during the request")?;
            match frame {
                Frame::Output(bytes) => {
                    let mut lines = Vec::new();
                    splitter.push(&bytes, &mut lines);
                    send_all(lines.into_iter().map(Line::from_marked_output), log).await;
                }
                Frame::Response(bytes) => response.extend_from_slice(&bytes),
                Frame::Report(json) => {
                    send_all(
                        splitter.finish().into_iter().map(Line::from_marked_output),
                        log,
                    )
                    .await;
                    let report: Report = serde_json::from_slice(&json)
                        .map_err(|e| format!("the warm worker's report is unreadable: {e}"))?;
                    let succeeded = matches!(report, Report::Succeeded { .. });
                    return Ok(Finished {
                        report,
                        response: succeeded.then_some(response),
                    });
                }
                other => return Err(format!("the warm worker answered out of order: {other:?}")),
            }
        }
    };
    Attempt::Done(match tokio::time::timeout(limit, answered).await {
        Ok(result) => result,
        Err(_) => Ok(Finished {
            report: Report::Failed {
                exit_code: None,
                reason: format!("no answer from the warm worker within {}s", limit.as_secs()),
                outputs: Vec::new(),
            },
            response: None,
        }),
    })
}

/// The frames coming from a worker.
struct Frames<R> {
    reader: R,
    buffer: Vec<u8>,
    chunk: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Frames<R> {
    /// The next frame; None when the connection ended between frames.
    async fn next(&mut self) -> Result<Option<Frame>, String> {
        loop {
            if let Some((frame, used)) = Frame::decode(&self.buffer)? {
                self.buffer.drain(..used);
                return Ok(Some(frame));
            }
            let read = self
                .reader
                .read(&mut self.chunk)
                .await
                .map_err(|e| e.to_string())?;
            if read == 0 {
                return if self.buffer.is_empty() {
                    Ok(None)
                } else {
                    Err("the connection ended inside a frame".into())
                };
            }
            self.buffer.extend_from_slice(&self.chunk[..read]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warm(min: u32, max: u32) -> Service {
        let mut service = Service::from_json(serde_json::json!({
            "name": "w", "image": "busybox", "script": "true",
            "synchronous": {"min_scale": min, "max_scale": max},
        }))
        .unwrap();
        service.owner = "alice@example.org".into();
        service
    }

    #[test]
    fn workers_scale_between_min_and_max_scale() {
        assert_eq!(scale_of(&warm(1, 4)), (1, 4));
        assert_eq!(scale_of(&warm(2, 0)), (2, MAX_WORKERS as i32));
        assert_eq!(scale_of(&warm(12, 0)), (12, 12));
        assert_eq!(scale_of(&warm(3, 1)), (3, 3));
        assert!(has_workers(&warm(1, 0)));
        assert!(!has_workers(&warm(0, 4)));
    }
}
