//! Exposed services (OSCAR's `expose`). The server reverse-proxies
//! `/system/services/<name>/exposed/` to them in both runtimes. On Kubernetes
//! ([`Runtime::Cluster`]) they are Deployments the executor applies with each save
//! ([`crate::kubernetes::exposed`]): the proxy forwards to their Service, and the lifecycle,
//! state and logs are the cluster's. In embedded mode ([`Runtime::Local`]) each runs as
//! instances, long-lived sandboxed processes of the service's image
//! ([`LocalExecutor::launch`]), supervised here.
//!
//! The reconciler ([`Exposed::reconcile`], every few seconds and after each change) keeps what
//! runs equal to the catalog: a new or changed exposed service is (re)deployed, a deleted,
//! stopped or no longer exposed one goes. A deployment keeps `min_scale` instances running;
//! each instance is supervised: started, probed on `health_path` until it answers, started
//! again with a growing backoff when it exits. Load scales it: when every instance has
//! [`BUSY_AT`] requests in flight another starts, up to `max_scale`; an instance beyond
//! `min_scale` stops after [`IDLE_AFTER`] without requests (with `min_scale: 0` the first
//! request starts one and waits for it).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use model::function::log::{Line, Stream};
use model::service::Service;
use model::services::{
    DeploymentLogEntry, DeploymentStatus, DeploymentSummary, ExposedView, InstanceView,
};
use model::{AppError, AppResult, Timestamp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{Notify, watch};

use crate::access::Caller;
use crate::db::Database;
use crate::jobs::executor::{Execution, Finished, JobVolume, StorageAccess};
use crate::jobs::executor::{memory_limit, secret_variables};
use crate::jobs::local::{
    InstanceKind, InstanceSocket, Launch, LocalExecutor, mount_dir_of, staging_dir_of,
};
use crate::jobs::logs::{LineSplitter, LogSink};
use crate::jobs::rclone::{self, Remote};
use crate::kubernetes::cluster::Cluster;
use crate::kubernetes::exposed as kube_exposed;
use crate::kubernetes::workers as kube_workers;
use crate::services::{self, Catalog};
use model::function::log::MAX_MARKED_LINE;
use model::function::work::done_job;

/// What upstream's clients show as the kind of runtime of an exposed service.
pub const RESOURCE_KIND: &str = "exposed_service";
/// Requests in flight on every instance at which another starts.
pub const BUSY_AT: usize = 4;
/// Warm workers a synchronous service without `max_scale` may have.
pub const MAX_WORKERS: u32 = 10;
/// An instance beyond `min_scale` stops after this long without requests.
pub const IDLE_AFTER: Duration = Duration::from_secs(300);
/// How long a request waits for an instance to become ready (upstream's startup probe allows
/// 18 × 10 s).
pub const READY_WITHIN: Duration = Duration::from_secs(180);
/// Log lines kept per service (its instances' output and the platform's notes).
const LOG_LINES: usize = 2000;
/// Log lines the service's page shows.
const VIEW_LINES: usize = 200;
/// The longest wait before an instance that keeps exiting is started again.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// An instance that ran this long starts its next backoff from the beginning.
const STABLE_AFTER: Duration = Duration::from_secs(60);
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// How long stopping the server waits for its instances to be gone.
const STOPPED_WITHIN: Duration = Duration::from_secs(10);

/// Where exposed services run.
pub enum Runtime {
    /// Instances on this machine, supervised by this server.
    Local(Arc<LocalExecutor>),
    /// Deployments on the cluster.
    Cluster(Box<Cluster>),
}

/// The exposed services running on this server.
pub struct Exposed {
    /// Set in embedded mode: what starts instances.
    launcher: Option<Arc<LocalExecutor>>,
    /// Set in Kubernetes mode.
    cluster: Option<Cluster>,
    /// Kubernetes mode: synchronous services' warm workers.
    workers: kube_workers::Workers,
    /// Kubernetes mode: what this server knows of each service it proxied to.
    reached: Mutex<HashMap<String, Reached>>,
    /// Instances' directories: `<root>/<service>-<n>`.
    root: PathBuf,
    /// Where instances mount a folder of the platform's store from.
    storage: StorageAccess,
    deployments: Mutex<HashMap<String, Arc<Deployment>>>,
    /// The catalog the last reconciliation saw.
    seen: Mutex<Option<Arc<Vec<Service>>>>,
    /// Instances started so far, which names their directories.
    started: std::sync::atomic::AtomicU64,
    /// One reconciliation at a time.
    reconciling: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Exposed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exposed").field("root", &self.root).finish()
    }
}

/// One exposed service as deployed: its definition when it was, and its instances.
struct Deployment {
    service: Service,
    kind: InstanceKind,
    min_scale: u32,
    max_scale: u32,
    /// Probed until it answers (an exposed service's); a worker is ready once it accepts.
    health_path: Option<String>,
    /// The definition and secrets it was deployed with: a change redeploys.
    fingerprint: u64,
    launch_env: Vec<(String, String)>,
    pull_credentials: Option<images::Credentials>,
    /// The service's volume, or why it cannot have it.
    volume: Result<Option<JobVolume>, String>,
    /// The remote of the service's `mount`, or why it cannot be made.
    mount: Option<Result<Remote, String>>,
    state: Mutex<State>,
    /// Told when an instance becomes ready or a request ends: waiting requests look again.
    ready: Arc<Notify>,
    log: Mutex<VecDeque<Line>>,
    /// Set when the deployment goes: every instance stops.
    gone: watch::Sender<bool>,
}

struct State {
    instances: Vec<Arc<InstanceState>>,
    next_id: u32,
    restarts: u32,
    /// Why it is not (fully) ready, when it is not.
    reason: String,
    since: Timestamp,
}

struct InstanceState {
    id: u32,
    socket: Mutex<Option<InstanceSocket>>,
    /// Its directory, on the host and as it sees it (a worker's requests go there).
    dir: PathBuf,
    seen_dir: Mutex<PathBuf>,
    /// A worker's current job's log, which its output goes to; else the service's log.
    sink: Mutex<Option<LogSink>>,
    /// The last job a worker said it was done with ([`done_line`]).
    done: watch::Sender<String>,
    /// Told to end the process and start it again (a request given up half-way).
    restart: Notify,
    in_flight: Arc<AtomicUsize>,
    last_used: Mutex<Instant>,
    /// Told to stop (scale-down).
    stop: watch::Sender<bool>,
}

impl InstanceState {
    fn ready_socket(&self) -> Option<InstanceSocket> {
        self.socket.lock().unwrap().clone()
    }
}

/// A connection to one instance; its request counts as in flight (embedded mode's scaling
/// rule) until `in_flight` is dropped.
pub struct Connection {
    pub stream: Box<dyn Io>,
    pub in_flight: InFlight,
}

/// A byte stream to an instance: a Unix socket on this machine, TCP to a cluster's Service.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// How long connecting to a cluster's Service may take.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);
/// Kubernetes mode, `min_scale: 0`: a service used this recently is taken to be running (no
/// server idles it before [`IDLE_AFTER`] without a recorded request), and requests are
/// recorded on the cluster at most this often.
const AWAKE_FOR: Duration = Duration::from_secs(60);
const RECORD_EVERY: Duration = Duration::from_secs(60);

/// Kubernetes mode: what this server knows of a service's Deployment.
#[derive(Default)]
struct Reached {
    /// Its Service's address, read once (forgotten when it does not answer, as after the
    /// service was made again).
    address: Option<std::net::SocketAddr>,
    /// When it last answered (or was woken): taken to be running for [`AWAKE_FOR`] after.
    awake: Option<Instant>,
    /// When a request to it was last recorded on the cluster.
    recorded: Option<Instant>,
    /// One wake at a time; the requests that wait for it share it.
    waking: Arc<tokio::sync::Mutex<()>>,
    in_flight: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl Reached {
    fn is_awake(&self) -> bool {
        self.awake.is_some_and(|at| at.elapsed() < AWAKE_FOR)
    }
}

/// One request in flight on an instance, until dropped.
pub struct InFlight(Arc<AtomicUsize>, Arc<Notify>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        // A worker that was busy is idle again for a request that waits.
        self.1.notify_waiters();
    }
}

impl Exposed {
    pub fn new(runtime: Runtime, root: PathBuf, storage: StorageAccess) -> Self {
        let (launcher, cluster) = match runtime {
            Runtime::Local(launcher) => (Some(launcher), None),
            Runtime::Cluster(cluster) => (None, Some(*cluster)),
        };
        Self {
            launcher,
            cluster,
            workers: Default::default(),
            reached: Mutex::default(),
            root,
            storage,
            deployments: Mutex::default(),
            seen: Mutex::default(),
            started: Default::default(),
            reconciling: tokio::sync::Mutex::new(()),
        }
    }

    /// Makes what runs match the catalog: deploys new and changed exposed services, removes
    /// the others' instances.
    pub async fn reconcile(&self, db: &Database, catalog: &Catalog) -> AppResult<()> {
        let _one = self.reconciling.lock().await;
        let services = catalog.list(db).await?;
        let stopped = stopped_services(db).await?;
        // A definition or its secrets change only with the catalog (one transaction): while
        // it is the same, what is deployed stays as it is, and no secrets are read again.
        let unchanged = {
            let mut seen = self.seen.lock().unwrap();
            let same = seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &services));
            *seen = Some(services.clone());
            same
        };
        if !unchanged {
            // A service made again, or with other ports, has another address.
            for reached in self.reached.lock().unwrap().values_mut() {
                reached.address = None;
            }
        }
        let current: HashMap<String, u64> = self
            .deployments
            .lock()
            .unwrap()
            .iter()
            .map(|(name, d)| (name.clone(), d.fingerprint))
            .collect();
        // Each wanted service, with its secrets when they must be read (None: kept as is).
        let mut wanted = HashMap::new();
        if self.launcher.is_some() {
            for service in services.iter().filter(|s| kind_of(s).is_some()) {
                if stopped.contains(&service.name) && service.is_exposed() {
                    continue;
                }
                let secrets = if unchanged && current.contains_key(&service.name) {
                    None
                } else {
                    Some(services::load_secrets(db, &service.name).await?)
                };
                wanted.insert(service.name.clone(), (service, secrets));
            }
        }
        for (name, fingerprint) in &current {
            let keep = wanted.get(name).is_some_and(|(s, secrets)| match secrets {
                None => true,
                Some(secrets) => fingerprint_of(s, secrets) == *fingerprint,
            });
            if !keep {
                self.remove(name);
            }
        }
        for (name, (service, secrets)) in wanted {
            let Some(secrets) = secrets else {
                continue;
            };
            if self.deployments.lock().unwrap().contains_key(&name) {
                continue;
            }
            let pull_credentials = crate::registry_credentials::for_image(
                db,
                &service.owner,
                &service.image_pull_secrets,
                &service.image,
            )
            .await
            .unwrap_or_else(|err| {
                tracing::warn!(service = %name, %err, "cannot read the image's pull credentials");
                None
            });
            let volume = crate::volumes::for_job(db, service).await?;
            self.deploy(service.clone(), &secrets, pull_credentials, volume);
        }
        Ok(())
    }

    fn deploy(
        &self,
        service: Service,
        secrets: &BTreeMap<String, String>,
        pull_credentials: Option<images::Credentials>,
        volume: Result<Option<JobVolume>, String>,
    ) {
        let Some(launcher) = self.launcher.clone() else {
            return;
        };
        let Some(kind) = kind_of(&service) else {
            return;
        };
        let (min_scale, max_scale, health_path) = match (&service.expose, kind) {
            (Some(expose), InstanceKind::Exposed) => (
                expose.min_scale,
                expose.max_scale,
                Some(expose.health_path.clone()),
            ),
            _ => {
                let sync = service.synchronous;
                let max = match sync.max_scale {
                    0 => sync.min_scale.max(MAX_WORKERS),
                    max => max,
                };
                (sync.min_scale, max, None)
            }
        };
        let mut launch_env: Vec<(String, String)> = service
            .environment
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        launch_env.extend(secret_variables(secrets));
        launch_env.extend([
            ("OSCAR_SERVICE_NAME".to_string(), service.name.clone()),
            ("OSCAR_SERVICE_TOKEN".to_string(), service.token.clone()),
            (
                "OSCAR_SERVICE_BASE_PATH".to_string(),
                model::routes::exposed_base(&service.name),
            ),
        ]);
        let (gone, _) = watch::channel(false);
        let deployment = Arc::new(Deployment {
            fingerprint: fingerprint_of(&service, secrets),
            kind,
            min_scale,
            max_scale,
            health_path,
            launch_env,
            pull_credentials,
            volume,
            mount: rclone::for_instances(&service, secrets, &self.storage),
            state: Mutex::new(State {
                instances: Vec::new(),
                next_id: 0,
                restarts: 0,
                reason: "starting".into(),
                since: Timestamp::now(),
            }),
            ready: Arc::new(Notify::new()),
            log: Mutex::new(VecDeque::new()),
            gone,
            service,
        });
        deployment.note(format!(
            "deployed: {} instance(s) kept running, at most {}",
            deployment.min_scale, deployment.max_scale
        ));
        for _ in 0..deployment.min_scale {
            self.add_instance(&launcher, &deployment);
        }
        tracing::info!(service = %deployment.service.name, "exposed service deployed");
        self.deployments
            .lock()
            .unwrap()
            .insert(deployment.service.name.clone(), deployment);
    }

    /// Stops every instance of `name`'s deployment.
    fn remove(&self, name: &str) {
        if let Some(deployment) = self.deployments.lock().unwrap().remove(name) {
            deployment.gone.send_replace(true);
            // Requests waiting for one of its instances look for its successor.
            deployment.ready.notify_waiters();
            tracing::info!(service = %name, "exposed service removed");
        }
    }

    fn add_instance(&self, launcher: &Arc<LocalExecutor>, deployment: &Arc<Deployment>) {
        // Unique on this server: an instance going away never removes its successor's files.
        let serial = self.started.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .root
            .join(format!("{}-{serial}", deployment.service.name));
        let instance = {
            let mut state = deployment.state.lock().unwrap();
            let instance = Arc::new(InstanceState {
                id: state.next_id,
                socket: Mutex::new(None),
                dir: dir.clone(),
                seen_dir: Mutex::new(dir.clone()),
                sink: Mutex::new(None),
                done: watch::channel(String::new()).0,
                restart: Notify::new(),
                in_flight: Arc::default(),
                last_used: Mutex::new(Instant::now()),
                stop: watch::channel(false).0,
            });
            state.next_id += 1;
            state.instances.push(instance.clone());
            instance
        };
        tokio::spawn(supervise(
            launcher.clone(),
            deployment.clone(),
            instance,
            dir,
        ));
    }

    /// A connection to a ready instance of `name`, started or scaled up as load needs. The
    /// caller has checked that the service exists, is exposed and lets the request in.
    pub async fn connect(
        &self,
        db: &Database,
        catalog: &Catalog,
        service: &Service,
    ) -> AppResult<Connection> {
        let name = service.name.as_str();
        // Cheap first: anyone may call an open service.
        let stopped = |by| {
            AppError::Unavailable(format!(
                "the service {name} was stopped by {by}: its owner can start it again"
            ))
        };
        let Some(launcher) = self.launcher.clone() else {
            if let Some(by) = stopped_by(db, name).await? {
                return Err(stopped(by));
            }
            return self.connect_cluster(service).await;
        };
        // A deployment replaced while waiting (restart, new definition): its successor.
        for _ in 0..3 {
            let deployment = match self.deployment(name) {
                Some(deployment) => deployment,
                None => {
                    // A reconciliation reads the whole catalog.
                    if let Some(by) = stopped_by(db, name).await? {
                        return Err(stopped(by));
                    }
                    self.reconcile(db, catalog).await?;
                    self.deployment(name).ok_or_else(|| {
                        AppError::Unavailable(format!("the service {name} is not running here"))
                    })?
                }
            };
            match self.connection(&launcher, &deployment).await {
                Err(_) if *deployment.gone.borrow() => continue,
                result => {
                    return result.map(|(_, stream, in_flight)| Connection {
                        stream: Box::new(stream),
                        in_flight,
                    });
                }
            }
        }
        Err(AppError::Unavailable(format!(
            "the service {name} is being replaced: try again"
        )))
    }

    /// Kubernetes mode: a connection to the service's Service, which spreads requests over
    /// its ready pods. An address that does not answer is read again once (the service may
    /// have been made again, with another).
    async fn connect_cluster(&self, service: &Service) -> AppResult<Connection> {
        let cluster = self.cluster.as_ref().expect("one runtime is set");
        let name = &service.name;
        let resting = service.expose.as_ref().is_some_and(|e| e.min_scale == 0);
        let mut error = String::new();
        for _ in 0..2 {
            let (known, awake, record, waking) = self.with_reached(name, |r| {
                let record = r.recorded.is_none_or(|at| at.elapsed() >= RECORD_EVERY);
                if record {
                    r.recorded = Some(Instant::now());
                }
                (r.address, r.is_awake(), record, r.waking.clone())
            });
            if resting && !awake {
                // The first request wakes it; those meanwhile wait for that wake.
                let _one = waking.lock().await;
                if !self.with_reached(name, |r| r.is_awake()) {
                    cluster
                        .wake_exposed(service, READY_WITHIN)
                        .await
                        .map_err(AppError::Unavailable)?;
                    self.with_reached(name, |r| r.awake = Some(Instant::now()));
                }
            }
            if resting
                && record
                && let Err(err) = cluster.mark_exposed_used(service).await
            {
                tracing::warn!(service = %name, %err, "cannot record the service's use");
            }
            let address = match known {
                Some(address) => address,
                None => {
                    let address = cluster
                        .exposed_address(service)
                        .await
                        .map_err(AppError::Unavailable)?;
                    self.with_reached(name, |r| r.address = Some(address));
                    address
                }
            };
            match tokio::time::timeout(CONNECT_WITHIN, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    let in_flight = self.with_reached(name, |r| {
                        r.awake = Some(Instant::now());
                        r.in_flight.fetch_add(1, Ordering::Relaxed);
                        InFlight(r.in_flight.clone(), r.done.clone())
                    });
                    return Ok(Connection {
                        stream: Box::new(stream),
                        in_flight,
                    });
                }
                Ok(Err(e)) => error = e.to_string(),
                Err(_) => error = format!("no answer within {}s", CONNECT_WITHIN.as_secs()),
            }
            // Read again, and woken again if it rests.
            self.with_reached(name, |r| (r.address, r.awake) = (None, None));
        }
        Err(AppError::Unavailable(format!(
            "no instance of {name} answers ({error}): see its deployment's state"
        )))
    }

    fn with_reached<T>(&self, name: &str, f: impl FnOnce(&mut Reached) -> T) -> T {
        f(self
            .reached
            .lock()
            .unwrap()
            .entry(name.to_string())
            .or_default())
    }

    /// Kubernetes mode: scales services with `min_scale: 0` that no server used for
    /// [`IDLE_AFTER`] to 0 (those this server is answering now are recorded as used instead),
    /// and warm workers beyond `min_scale` back to it. Nothing in embedded mode, where
    /// instances stop themselves.
    pub async fn scale_idle(&self, db: &Database, catalog: &Catalog) -> AppResult<()> {
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        let stopped = stopped_services(db).await?;
        let services = catalog.list(db).await?;
        self.workers.scale_idle(cluster, &services).await;
        let resting = services.iter().filter(|s| {
            s.is_exposed()
                && s.expose.as_ref().is_some_and(|e| e.min_scale == 0)
                && !stopped.contains(&s.name)
        });
        for service in resting {
            let busy = self
                .reached
                .lock()
                .unwrap()
                .get(&service.name)
                .is_some_and(|r| r.in_flight.load(Ordering::Relaxed) > 0);
            let idled = if busy {
                cluster.mark_exposed_used(service).await.map(|()| false)
            } else {
                cluster.scale_idle_exposed(service, IDLE_AFTER).await
            };
            match idled {
                Ok(true) => {
                    self.with_reached(&service.name, |r| r.awake = None);
                    tracing::info!(service = %service.name, "idle exposed service scaled to 0");
                }
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(service = %service.name, %err, "cannot idle the service")
                }
            }
        }
        Ok(())
    }

    /// A connection to a ready instance of the deployment, waiting for one (and starting one)
    /// as load needs.
    async fn connection(
        &self,
        launcher: &Arc<LocalExecutor>,
        deployment: &Arc<Deployment>,
    ) -> AppResult<(Arc<InstanceState>, UnixStream, InFlight)> {
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            let ready = deployment.ready.notified();
            if *deployment.gone.borrow() {
                return Err(AppError::Unavailable(format!(
                    "the service {} was replaced",
                    deployment.service.name
                )));
            }
            if let Some((instance, socket, in_flight)) = self.pick(launcher, deployment) {
                *instance.last_used.lock().unwrap() = Instant::now();
                match socket.connect().await {
                    Ok(stream) => return Ok((instance, stream, in_flight)),
                    // Exited between the pick and the connect (its supervision takes it out
                    // of the ready ones), a full backlog, or its socket replaced by another
                    // (refused): look again shortly.
                    Err(_) => {
                        drop(in_flight);
                        tokio::time::sleep(PROBE_EVERY).await;
                    }
                }
                continue;
            }
            if tokio::time::timeout_at(deadline, ready).await.is_err() {
                let reason = deployment.state.lock().unwrap().reason.clone();
                return Err(AppError::Unavailable(format!(
                    "no instance of {} became ready within {}s: {reason}",
                    deployment.service.name,
                    READY_WITHIN.as_secs()
                )));
            }
        }
    }

    /// The ready instance with the fewest requests in flight (a worker only when idle), with
    /// the request counted on it; another instance is started when all are busy (or none
    /// runs) and the service may have more.
    fn pick(
        &self,
        launcher: &Arc<LocalExecutor>,
        deployment: &Arc<Deployment>,
    ) -> Option<(Arc<InstanceState>, InstanceSocket, InFlight)> {
        let (busy_at, most) = match deployment.kind {
            InstanceKind::Exposed => (BUSY_AT, usize::MAX),
            InstanceKind::Worker => (1, 1),
        };
        let (best, starting, count, room) = {
            let state = deployment.state.lock().unwrap();
            let ready: Vec<_> = state
                .instances
                .iter()
                .filter_map(|i| Some((i.clone(), i.ready_socket()?)))
                .collect();
            let best = ready
                .iter()
                .filter(|(i, _)| i.in_flight.load(Ordering::Relaxed) < most)
                .min_by_key(|(i, _)| i.in_flight.load(Ordering::Relaxed))
                .cloned();
            // Counted under the lock: two requests never take the same idle worker.
            let best = best.map(|(i, socket)| {
                i.in_flight.fetch_add(1, Ordering::Relaxed);
                let in_flight = InFlight(i.in_flight.clone(), deployment.ready.clone());
                (i.clone(), socket, in_flight)
            });
            // Ready instances with room left after this request.
            let room = ready
                .iter()
                .filter(|(i, _)| i.in_flight.load(Ordering::Relaxed) < busy_at)
                .count();
            (
                best,
                state.instances.len() > ready.len(),
                state.instances.len(),
                room,
            )
        };
        // Another instance when none has room left (one start at a time: none while an
        // instance is still starting).
        let busy = room == 0;
        if busy && !starting && count < deployment.max_scale as usize {
            self.add_instance(launcher, deployment);
        }
        best
    }

    /// Whether `execution` runs on a warm worker of `service` (`synchronous.min_scale`): here,
    /// or on the cluster.
    pub fn serves(&self, service: &Service, execution: &Execution) -> bool {
        if self.cluster.is_some() {
            return kube_workers::Workers::serves(service, execution);
        }
        execution.sync
            && self
                .deployment(&service.name)
                .is_some_and(|d| d.kind == InstanceKind::Worker)
    }

    /// Runs a synchronous job on a warm worker of its service: an idle one, or one started for
    /// it up to `synchronous.max_scale`. Its output goes to the job's log. The execution
    /// comes back when no worker on the cluster takes it.
    pub async fn run_warm(
        &self,
        service: &Service,
        execution: Execution,
        log: LogSink,
    ) -> Result<Result<Finished, String>, Execution> {
        if let Some(cluster) = &self.cluster {
            return self.workers.run(cluster, service, execution, &log).await;
        }
        Ok(self.run_here(service, execution, log).await)
    }

    async fn run_here(
        &self,
        service: &Service,
        execution: Execution,
        log: LogSink,
    ) -> Result<Finished, String> {
        let (Some(launcher), Some(deployment)) =
            (self.launcher.clone(), self.deployment(&service.name))
        else {
            return Err("the service's warm workers are gone".into());
        };
        let (instance, stream, in_flight) = self
            .connection(&launcher, &deployment)
            .await
            .map_err(|e| e.to_string())?;
        let job = execution.job.clone();
        let mut done = instance.done.subscribe();
        *instance.sink.lock().unwrap() = Some(log);
        // A run given up half-way (stopped, timed out) leaves the worker busy with it: it is
        // started again.
        let abandoned = Abandoned(Some(instance.clone()));
        let seen_dir = instance.seen_dir.lock().unwrap().clone();
        let (result, answered) = launcher
            .run_on_worker(&instance.dir, &seen_dir, stream, execution)
            .await;
        if answered {
            // The worker's output up to its done line is this job's.
            let said = done.wait_for(|last| *last == job);
            let _ = tokio::time::timeout(Duration::from_secs(2), said).await;
            *instance.sink.lock().unwrap() = None;
        }
        abandoned.finish(answered);
        drop(in_flight);
        result
    }

    fn deployment(&self, name: &str) -> Option<Arc<Deployment>> {
        self.deployments.lock().unwrap().get(name).cloned()
    }

    /// The deployment of an exposed service, as `/system/services/<name>/deployment` reports
    /// it; `stopped_by` from the catalog.
    pub async fn summary(&self, service: &Service, stopped_by: Option<&str>) -> DeploymentSummary {
        match &self.cluster {
            Some(cluster) => cluster_summary(&cluster.exposed_state(service).await, stopped_by),
            None => self.local_summary(&service.name, stopped_by),
        }
    }

    fn local_summary(&self, name: &str, stopped_by: Option<&str>) -> DeploymentSummary {
        let summary = |state: &str, reason: String, since: Option<Timestamp>, active, affected| {
            DeploymentSummary {
                state: state.into(),
                reason,
                last_transition_time: since.map(Timestamp::rfc3339),
                active_instances: active,
                affected_instances: affected,
                resource_kind: RESOURCE_KIND.into(),
            }
        };
        if let Some(by) = stopped_by {
            return summary("stopped", format!("stopped by {by}"), None, 0, 0);
        }
        let Some(deployment) = self.deployment(name) else {
            return summary("pending", "being deployed".into(), None, 0, 0);
        };
        let state = deployment.state.lock().unwrap();
        let ready = state
            .instances
            .iter()
            .filter(|i| i.ready_socket().is_some())
            .count() as i64;
        let affected = state.instances.len() as i64 - ready;
        let min = i64::from(deployment.min_scale);
        let (kind, reason) = match (ready, affected) {
            (0, 0) => (
                "ready",
                "no instance runs: the first request starts one".to_string(),
            ),
            (0, _) if state.restarts >= 3 => ("failed", state.reason.clone()),
            (0, _) => ("pending", state.reason.clone()),
            (ready, _) if ready < min || affected > 0 => ("degraded", state.reason.clone()),
            _ => ("ready", String::new()),
        };
        summary(kind, reason, Some(state.since), ready, affected)
    }

    /// The last `tail` lines of the service's instances (and, in embedded mode, the
    /// platform's notes on them); why there are none when they cannot be read.
    pub async fn logs(
        &self,
        service: &Service,
        timestamps: bool,
        tail: usize,
    ) -> Result<Vec<DeploymentLogEntry>, String> {
        if let Some(cluster) = &self.cluster {
            let lines = cluster.exposed_logs(service, tail).await?;
            return Ok(kube_exposed::log_entries(lines, timestamps));
        }
        let deployment = self
            .deployment(&service.name)
            .ok_or("No instance of this service runs on this server.")?;
        let log = deployment.log.lock().unwrap();
        Ok(log
            .iter()
            .skip(log.len().saturating_sub(tail))
            .map(|line| DeploymentLogEntry {
                timestamp: timestamps.then(|| line.at.rfc3339()),
                message: line.text.clone(),
            })
            .collect())
    }

    /// Stops, starts or restarts an exposed service the caller manages, and reports its
    /// deployment after.
    pub async fn act(
        &self,
        db: &Database,
        catalog: &Catalog,
        caller: &Caller,
        name: &str,
        action: Action,
    ) -> AppResult<DeploymentStatus> {
        let service = services::require_visible(db, caller, name).await?;
        services::authorize_owner(caller, &service)?;
        if !service.is_exposed() {
            return Err(not_exposed(name));
        }
        if let Some(cluster) = &self.cluster {
            match action {
                Action::Stop => cluster.stop_exposed(&service).await,
                Action::Start => cluster.start_exposed(&service).await,
                Action::Restart => cluster.restart_exposed(&service).await,
            }
            .map_err(AppError::Unavailable)?;
        }
        match action {
            Action::Stop => set_stopped_by(db, name, Some(&caller.id)).await?,
            Action::Start => set_stopped_by(db, name, None).await?,
            Action::Restart => self.remove(name),
        }
        tracing::info!(service = %name, ?action, by = %caller.id, "exposed service lifecycle");
        self.reconcile(db, catalog).await?;
        Ok(DeploymentStatus {
            service_name: service.name.clone(),
            namespace: self.namespace_of(&service),
            summary: self
                .summary(&service, stopped_by(db, name).await?.as_deref())
                .await,
        })
    }

    /// The namespace the service runs in on a cluster; empty in embedded mode.
    pub fn namespace_of(&self, service: &Service) -> String {
        self.cluster
            .as_ref()
            .map(|c| c.namespace_of(service))
            .unwrap_or_default()
    }

    /// What the service's page shows of an exposed service the caller sees.
    pub async fn view(&self, db: &Database, caller: &Caller, name: &str) -> AppResult<ExposedView> {
        let service = services::require_visible(db, caller, name).await?;
        let Some(expose) = service.expose.as_ref().filter(|_| service.is_exposed()) else {
            return Err(not_exposed(name));
        };
        let stopped_by = stopped_by(db, name).await?;
        if let Some(cluster) = &self.cluster {
            let state = cluster.exposed_state(&service).await;
            let pods = state
                .as_ref()
                .map(|(_, pods)| pods.as_slice())
                .unwrap_or_default();
            return Ok(ExposedView {
                status: cluster_summary(&state, stopped_by.as_deref()),
                url: format!("{}/", model::routes::exposed_base(name)),
                set_auth: expose.set_auth,
                instances: kube_exposed::instances(pods),
                restarts: kube_exposed::restarts(pods),
                log: self
                    .logs(&service, true, VIEW_LINES)
                    .await
                    .unwrap_or_default(),
            });
        }
        let (instances, restarts) = match self.deployment(name) {
            Some(deployment) => {
                let state = deployment.state.lock().unwrap();
                let instances = state
                    .instances
                    .iter()
                    .map(|i| InstanceView {
                        id: i.id,
                        ready: i.ready_socket().is_some(),
                        in_flight: i.in_flight.load(Ordering::Relaxed) as u32,
                    })
                    .collect();
                (instances, state.restarts)
            }
            None => (Vec::new(), 0),
        };
        Ok(ExposedView {
            status: self.local_summary(name, stopped_by.as_deref()),
            url: format!("{}/", model::routes::exposed_base(name)),
            set_auth: expose.set_auth,
            instances,
            restarts,
            log: self
                .logs(&service, true, VIEW_LINES)
                .await
                .unwrap_or_default(),
        })
    }

    /// Stops every instance (the server is shutting down) and waits (a while) until they are
    /// gone, their mounts detached and left to upload what was written.
    pub async fn stop_all(&self) {
        let stopped: Vec<_> = self
            .deployments
            .lock()
            .unwrap()
            .drain()
            .map(|(_, deployment)| deployment)
            .collect();
        for deployment in &stopped {
            deployment.gone.send_replace(true);
        }
        let deadline = Instant::now() + STOPPED_WITHIN;
        while Instant::now() < deadline
            && stopped
                .iter()
                .any(|d| !d.state.lock().unwrap().instances.is_empty())
        {
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }
}

impl Deployment {
    fn note(&self, text: impl std::fmt::Display) {
        self.push(Line::now(Stream::Platform, format!("[oscar] {text}")));
    }

    fn push(&self, line: Line) {
        let mut log = self.log.lock().unwrap();
        if log.len() == LOG_LINES {
            log.pop_front();
        }
        log.push_back(line);
    }

    fn transition(&self, reason: impl Into<String>) {
        let mut state = self.state.lock().unwrap();
        state.reason = reason.into();
        state.since = Timestamp::now();
    }
}

/// A cluster deployment's summary (unavailable with the reason when it cannot be read), with
/// who stopped it.
fn cluster_summary(
    state: &Result<
        (
            Option<k8s_openapi::api::apps::v1::Deployment>,
            Vec<k8s_openapi::api::core::v1::Pod>,
        ),
        String,
    >,
    stopped_by: Option<&str>,
) -> DeploymentSummary {
    let mut summary = match state {
        Ok((deployment, pods)) => kube_exposed::summary(deployment.as_ref(), pods),
        Err(reason) => DeploymentSummary {
            state: "unavailable".into(),
            reason: reason.clone(),
            last_transition_time: None,
            active_instances: 0,
            affected_instances: 0,
            resource_kind: RESOURCE_KIND.into(),
        },
    };
    if let Some(by) = stopped_by.filter(|_| summary.state == "stopped") {
        summary.reason = format!("stopped by {by}");
    }
    summary
}

/// What an owner does to an exposed service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Stop,
    Start,
    Restart,
}

impl std::str::FromStr for Action {
    type Err = AppError;

    fn from_str(text: &str) -> Result<Self, AppError> {
        match text {
            "stop" => Ok(Self::Stop),
            "start" => Ok(Self::Start),
            "restart" => Ok(Self::Restart),
            other => Err(AppError::bad_request(
                "action",
                format!("{other:?} is not stop, start or restart"),
            )),
        }
    }
}

fn not_exposed(name: &str) -> AppError {
    AppError::bad_request(
        "expose.api_port",
        format!("the service {name} is not exposed: it runs a job per request"),
    )
}

/// Services their owners stopped.
pub async fn stopped_services(db: &Database) -> AppResult<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT name FROM services WHERE stopped_by IS NOT NULL ORDER BY name")
            .fetch_all(db.pool())
            .await?,
    )
}

/// Who stopped `name`, if it is stopped.
pub async fn stopped_by(db: &Database, name: &str) -> AppResult<Option<String>> {
    Ok(
        sqlx::query_scalar::<_, Option<String>>("SELECT stopped_by FROM services WHERE name = $1")
            .bind(name)
            .fetch_optional(db.pool())
            .await?
            .flatten(),
    )
}

/// Records that `name` was stopped by `by`, or runs (None).
async fn set_stopped_by(db: &Database, name: &str, by: Option<&str>) -> AppResult<()> {
    sqlx::query("UPDATE services SET stopped_by = $1 WHERE name = $2")
        .bind(by)
        .bind(name)
        .execute(db.pool())
        .await?;
    Ok(())
}

fn fingerprint_of(service: &Service, secrets: &BTreeMap<String, String>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(service)
        .unwrap_or_default()
        .hash(&mut hasher);
    secrets.hash(&mut hasher);
    hasher.finish()
}

/// One instance for as long as its deployment wants it: started, probed until ready, started
/// again with a growing backoff whenever it exits.
async fn supervise(
    launcher: Arc<LocalExecutor>,
    deployment: Arc<Deployment>,
    instance: Arc<InstanceState>,
    dir: PathBuf,
) {
    let mut gone = deployment.gone.subscribe();
    let mut stop = instance.stop.subscribe();
    let mut backoff = Duration::from_secs(1);
    let name = format!("instance {}", instance.id);
    loop {
        let started = Instant::now();
        let launch = Launch {
            kind: deployment.kind,
            dir: dir.clone(),
            env: deployment.launch_env.clone(),
            memory: memory_limit(&deployment.service),
            pull_credentials: deployment.pull_credentials.clone(),
            volume: deployment.volume.clone(),
            mount: deployment.mount.clone(),
        };
        deployment.note(format!("{name}: starting"));
        let ended = tokio::select! {
            ended = run_instance(&launcher, &deployment, &instance, &name, launch) => ended,
            _ = gone.wait_for(|gone| *gone) => None,
            _ = stop.wait_for(|stop| *stop) => None,
        };
        *instance.socket.lock().unwrap() = None;
        let Some(why) = ended else {
            deployment.note(format!("{name}: stopped"));
            break;
        };
        if started.elapsed() >= STABLE_AFTER {
            backoff = Duration::from_secs(1);
        }
        deployment.note(format!(
            "{name}: {why}; starting again in {}s",
            backoff.as_secs()
        ));
        {
            let mut state = deployment.state.lock().unwrap();
            state.restarts += 1;
        }
        deployment.transition(format!("{name}: {why}"));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = gone.wait_for(|gone| *gone) => break,
            _ = stop.wait_for(|stop| *stop) => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    let _ = tokio::fs::remove_dir_all(&dir).await;
    let _ = tokio::fs::remove_dir_all(staging_dir_of(&dir)).await;
    rclone::remove(&mount_dir_of(&dir)).await;
    let mut state = deployment.state.lock().unwrap();
    state.instances.retain(|i| i.id != instance.id);
}

/// Runs the instance until it exits; why it did.
async fn run_instance(
    launcher: &LocalExecutor,
    deployment: &Arc<Deployment>,
    instance: &Arc<InstanceState>,
    name: &str,
    launch: Launch,
) -> Option<String> {
    let (mut running, output) = match launcher.launch(&deployment.service, launch).await {
        Ok(running) => running,
        Err(reason) => return Some(format!("cannot start: {reason}")),
    };
    *instance.seen_dir.lock().unwrap() = running.seen_dir.clone();
    let forwarded = tokio::spawn(forward(output, deployment.clone(), instance.clone()));
    let socket = running.socket.clone();
    let probe = async {
        loop {
            let ready = match &deployment.health_path {
                Some(path) => answers(&socket, path).await,
                None => socket.connect().await.is_ok(),
            };
            if ready {
                return;
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    };
    let exited = tokio::select! {
        why = running.ended() => Some(why),
        () = probe => None,
        () = tokio::time::sleep(READY_WITHIN) => {
            drop(running);
            let _ = forwarded.await;
            return Some(format!(
                "did not answer its health check within {}s",
                READY_WITHIN.as_secs()
            ));
        }
    };
    let why = match exited {
        Some(why) => why,
        None => {
            *instance.socket.lock().unwrap() = Some(socket);
            deployment.note(format!("{name}: ready"));
            deployment.transition("");
            deployment.ready.notify_waiters();
            let idle = idle_stop(deployment, instance);
            tokio::select! {
                why = running.ended() => why,
                () = idle => {
                    let _ = instance.stop.send_replace(true);
                    return None;
                }
                () = instance.restart.notified() => {
                    drop(running);
                    let _ = forwarded.await;
                    return Some("its request was given up, so it is started afresh".into());
                }
            }
        }
    };
    drop(running);
    let _ = forwarded.await;
    Some(why)
}

/// Ends when the instance is beyond `min_scale` and had no request for [`IDLE_AFTER`].
async fn idle_stop(deployment: &Deployment, instance: &InstanceState) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let beyond = {
            let state = deployment.state.lock().unwrap();
            let rank = state.instances.iter().position(|i| i.id == instance.id);
            rank.is_some_and(|r| r >= deployment.min_scale as usize)
        };
        let idle = instance.in_flight.load(Ordering::Relaxed) == 0
            && instance.last_used.lock().unwrap().elapsed() >= IDLE_AFTER;
        if beyond && idle {
            deployment.note(format!("instance {}: idle, scaled down", instance.id));
            return;
        }
    }
}

/// Whether the instance answers `GET path` with a success or a redirect (a Kubernetes HTTP
/// probe's rule).
async fn answers(socket: &InstanceSocket, path: &str) -> bool {
    let Ok(mut stream) = socket.connect().await else {
        return false;
    };
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nUser-Agent: oscar-probe\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut head)).await;
    if !matches!(read, Ok(Ok(_))) {
        return false;
    }
    // "HTTP/1.x 200"
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|code| code.parse::<u16>().ok())
        .is_some_and(|code| (200..400).contains(&code))
}

/// The instance's output, line by line: a worker's to the log of the job it runs (its
/// script's lines marked, as a job's supervisor writes them), the rest to the service's log.
async fn forward(
    mut output: tokio::net::unix::pipe::Receiver,
    deployment: Arc<Deployment>,
    instance: Arc<InstanceState>,
) {
    let mut splitter = LineSplitter::with_limit(MAX_MARKED_LINE);
    let mut lines = Vec::new();
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let read = match output.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        splitter.push(&buffer[..read], &mut lines);
        for text in lines.drain(..) {
            route(&deployment, &instance, text).await;
        }
    }
    if let Some(text) = splitter.finish() {
        route(&deployment, &instance, text).await;
    }
}

async fn route(deployment: &Deployment, instance: &InstanceState, text: String) {
    if let Some(job) = done_job(&text) {
        instance.done.send_replace(job.to_string());
        return;
    }
    let sink = instance.sink.lock().unwrap().clone();
    match sink {
        Some(sink) => {
            let line = Line::from_marked_output(text);
            let _ = sink.send(line).await;
        }
        None => deployment.push(Line::now(Stream::Out, text)),
    }
}

/// Starts a worker again unless its request finished: one given up half-way may still run.
struct Abandoned(Option<Arc<InstanceState>>);

impl Abandoned {
    fn finish(mut self, cleanly: bool) {
        if cleanly {
            self.0 = None;
        }
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(instance) = self.0.take() {
            // The job's log ends here (its writer waits for every sender).
            *instance.sink.lock().unwrap() = None;
            *instance.socket.lock().unwrap() = None;
            // Only the process serving now: a dead one's successor must not get it.
            instance.restart.notify_waiters();
        }
    }
}

/// Which instances a service runs: an exposed service's servers, or a synchronous service's
/// warm workers; none for the others.
fn kind_of(service: &Service) -> Option<InstanceKind> {
    if service.is_exposed() {
        Some(InstanceKind::Exposed)
    } else if service.synchronous.min_scale > 0 {
        Some(InstanceKind::Worker)
    } else {
        None
    }
}
