//! Exposed services (OSCAR's `expose`) in embedded mode: each runs as instances, long-lived
//! sandboxed processes of the service's image ([`LocalExecutor::launch`]), which the server
//! reverse-proxies `/system/services/<name>/exposed/` to.
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
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use model::function::log::{Line, Stream};
use model::service::Service;
use model::service::expose::Expose;
use model::services::{
    DeploymentLogEntry, DeploymentStatus, DeploymentSummary, ExposedView, InstanceView,
};
use model::{AppError, AppResult, Timestamp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{Notify, watch};

use crate::access::Caller;
use crate::db::Database;
use crate::jobs::executor::{memory_limit, secret_variables};
use crate::jobs::local::{Launch, LocalExecutor};
use crate::jobs::logs::LineSplitter;
use crate::services::{self, Catalog};

/// What upstream's clients show as the kind of runtime of an exposed service.
pub const RESOURCE_KIND: &str = "exposed_service";
/// Requests in flight on every instance at which another starts.
pub const BUSY_AT: usize = 4;
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

/// The exposed services running on this server.
pub struct Exposed {
    /// None where instances cannot run (Kubernetes mode, for now).
    launcher: Option<Arc<LocalExecutor>>,
    /// Instances' directories: `<root>/<service>-<n>`.
    root: PathBuf,
    deployments: Mutex<HashMap<String, Arc<Deployment>>>,
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
    expose: Expose,
    /// The definition and secrets it was deployed with: a change redeploys.
    fingerprint: u64,
    launch_env: Vec<(String, String)>,
    pull_credentials: Option<images::Credentials>,
    state: Mutex<State>,
    /// Told when an instance becomes ready.
    ready: Notify,
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
    socket: Mutex<Option<PathBuf>>,
    in_flight: Arc<AtomicUsize>,
    last_used: Mutex<Instant>,
    /// Told to stop (scale-down).
    stop: watch::Sender<bool>,
}

impl InstanceState {
    fn ready_socket(&self) -> Option<PathBuf> {
        self.socket.lock().unwrap().clone()
    }
}

/// A connection to one instance; its request counts as in flight until `in_flight` is
/// dropped.
pub struct Connection {
    pub stream: UnixStream,
    pub in_flight: InFlight,
}

/// One request in flight on an instance, until dropped.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Exposed {
    pub fn new(launcher: Option<Arc<LocalExecutor>>, root: PathBuf) -> Self {
        Self {
            launcher,
            root,
            deployments: Mutex::default(),
            reconciling: tokio::sync::Mutex::new(()),
        }
    }

    /// Makes what runs match the catalog: deploys new and changed exposed services, removes
    /// the others' instances.
    pub async fn reconcile(&self, db: &Database, catalog: &Catalog) -> AppResult<()> {
        let _one = self.reconciling.lock().await;
        let services = catalog.list(db).await?;
        let stopped = stopped_services(db).await?;
        let mut wanted = HashMap::new();
        if self.launcher.is_some() {
            for service in services.iter().filter(|s| s.is_exposed()) {
                if stopped.contains(&service.name) {
                    continue;
                }
                let secrets = services::load_secrets(db, &service.name).await?;
                wanted.insert(service.name.clone(), (service, secrets));
            }
        }
        let current: Vec<(String, u64)> = self
            .deployments
            .lock()
            .unwrap()
            .iter()
            .map(|(name, d)| (name.clone(), d.fingerprint))
            .collect();
        for (name, fingerprint) in current {
            let keep = wanted
                .get(&name)
                .is_some_and(|(s, secrets)| fingerprint_of(s, secrets) == fingerprint);
            if !keep {
                self.remove(&name);
            }
        }
        for (name, (service, secrets)) in wanted {
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
            self.deploy(service.clone(), &secrets, pull_credentials);
        }
        Ok(())
    }

    fn deploy(
        &self,
        service: Service,
        secrets: &BTreeMap<String, String>,
        pull_credentials: Option<images::Credentials>,
    ) {
        let Some(launcher) = self.launcher.clone() else {
            return;
        };
        let Some(expose) = service.expose.clone() else {
            return;
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
            expose,
            launch_env,
            pull_credentials,
            state: Mutex::new(State {
                instances: Vec::new(),
                next_id: 0,
                restarts: 0,
                reason: "starting".into(),
                since: Timestamp::now(),
            }),
            ready: Notify::new(),
            log: Mutex::new(VecDeque::new()),
            gone,
            service,
        });
        deployment.note(format!(
            "deployed: {} instance(s) kept running, at most {}",
            deployment.expose.min_scale, deployment.expose.max_scale
        ));
        for _ in 0..deployment.expose.min_scale {
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
            tracing::info!(service = %name, "exposed service removed");
        }
    }

    fn add_instance(&self, launcher: &Arc<LocalExecutor>, deployment: &Arc<Deployment>) {
        let instance = {
            let mut state = deployment.state.lock().unwrap();
            let (stop, _) = watch::channel(false);
            let instance = Arc::new(InstanceState {
                id: state.next_id,
                socket: Mutex::new(None),
                in_flight: Arc::default(),
                last_used: Mutex::new(Instant::now()),
                stop,
            });
            state.next_id += 1;
            state.instances.push(instance.clone());
            instance
        };
        let dir = self
            .root
            .join(format!("{}-{}", deployment.service.name, instance.id));
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
        name: &str,
    ) -> AppResult<Connection> {
        let Some(launcher) = self.launcher.clone() else {
            return Err(AppError::Unavailable(
                "exposed services run only in embedded mode on this version".into(),
            ));
        };
        let deployment = match self.deployment(name) {
            Some(deployment) => deployment,
            None => {
                self.reconcile(db, catalog).await?;
                self.deployment(name).ok_or_else(|| {
                    AppError::Unavailable(format!(
                        "the service {name} is stopped: its owner can start it again"
                    ))
                })?
            }
        };
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            let ready = deployment.ready.notified();
            if let Some((instance, socket)) = self.pick(&launcher, &deployment) {
                instance.in_flight.fetch_add(1, Ordering::Relaxed);
                let guard = InFlight(instance.in_flight.clone());
                *instance.last_used.lock().unwrap() = Instant::now();
                match UnixStream::connect(&socket).await {
                    Ok(stream) => {
                        return Ok(Connection {
                            stream,
                            in_flight: guard,
                        });
                    }
                    // Exited between the pick and the connect: another, or the restart.
                    Err(_) => *instance.socket.lock().unwrap() = None,
                }
                continue;
            }
            if tokio::time::timeout_at(deadline, ready).await.is_err() {
                let reason = deployment.state.lock().unwrap().reason.clone();
                return Err(AppError::Unavailable(format!(
                    "no instance of {name} became ready within {}s: {reason}",
                    READY_WITHIN.as_secs()
                )));
            }
        }
    }

    /// The ready instance with the fewest requests in flight; another instance is started when
    /// all are busy (or none runs) and the service may have more.
    fn pick(
        &self,
        launcher: &Arc<LocalExecutor>,
        deployment: &Arc<Deployment>,
    ) -> Option<(Arc<InstanceState>, PathBuf)> {
        let (ready, count) = {
            let state = deployment.state.lock().unwrap();
            let ready: Vec<_> = state
                .instances
                .iter()
                .filter_map(|i| Some((i.clone(), i.ready_socket()?)))
                .collect();
            (ready, state.instances.len())
        };
        let best = ready
            .iter()
            .min_by_key(|(i, _)| i.in_flight.load(Ordering::Relaxed))
            .cloned();
        // One start at a time: none while an instance is still starting.
        let starting = count > ready.len();
        let busy = best
            .as_ref()
            .is_none_or(|(i, _)| i.in_flight.load(Ordering::Relaxed) >= BUSY_AT);
        if busy && !starting && count < deployment.expose.max_scale as usize {
            self.add_instance(launcher, deployment);
        }
        best
    }

    fn deployment(&self, name: &str) -> Option<Arc<Deployment>> {
        self.deployments.lock().unwrap().get(name).cloned()
    }

    /// The deployment of an exposed service, as `/system/services/<name>/deployment` reports
    /// it; `stopped_by` from the catalog.
    pub fn summary(&self, name: &str, stopped_by: Option<&str>) -> DeploymentSummary {
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
        if self.launcher.is_none() {
            return summary(
                "unavailable",
                "exposed services run only in embedded mode on this version".into(),
                None,
                0,
                0,
            );
        }
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
        let min = i64::from(deployment.expose.min_scale);
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

    /// The last `tail` lines of the service's instances and the platform's notes on them.
    pub fn logs(
        &self,
        name: &str,
        timestamps: bool,
        tail: usize,
    ) -> Option<Vec<DeploymentLogEntry>> {
        let deployment = self.deployment(name)?;
        let log = deployment.log.lock().unwrap();
        Some(
            log.iter()
                .skip(log.len().saturating_sub(tail))
                .map(|line| DeploymentLogEntry {
                    timestamp: timestamps.then(|| line.at.rfc3339()),
                    message: line.text.clone(),
                })
                .collect(),
        )
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
        match action {
            Action::Stop => set_stopped_by(db, name, Some(&caller.id)).await?,
            Action::Start => set_stopped_by(db, name, None).await?,
            Action::Restart => self.remove(name),
        }
        tracing::info!(service = %name, ?action, by = %caller.id, "exposed service lifecycle");
        self.reconcile(db, catalog).await?;
        Ok(DeploymentStatus {
            service_name: service.name.clone(),
            namespace: String::new(),
            summary: self.summary(name, stopped_by(db, name).await?.as_deref()),
        })
    }

    /// What the service's page shows of an exposed service the caller sees.
    pub async fn view(&self, db: &Database, caller: &Caller, name: &str) -> AppResult<ExposedView> {
        let service = services::require_visible(db, caller, name).await?;
        let Some(expose) = service.expose.as_ref().filter(|_| service.is_exposed()) else {
            return Err(not_exposed(name));
        };
        let stopped_by = stopped_by(db, name).await?;
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
            status: self.summary(name, stopped_by.as_deref()),
            url: format!("{}/", model::routes::exposed_base(name)),
            set_auth: expose.set_auth,
            instances,
            restarts,
            log: self.logs(name, true, VIEW_LINES).unwrap_or_default(),
        })
    }

    /// Every instance stops (the server is shutting down).
    pub fn stop_all(&self) {
        for (_, deployment) in self.deployments.lock().unwrap().drain() {
            deployment.gone.send_replace(true);
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
    service.token.hash(&mut hasher);
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
            dir: dir.clone(),
            env: deployment.launch_env.clone(),
            memory: memory_limit(&deployment.service),
            pull_credentials: deployment.pull_credentials.clone(),
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
    let forwarded = tokio::spawn(forward(output, deployment.clone()));
    let health = &deployment.expose.health_path;
    let probe = async {
        loop {
            if answers(&running.socket, health).await {
                return;
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    };
    let exited = tokio::select! {
        status = running.child.wait() => Some(status),
        () = probe => None,
    };
    let status = match exited {
        Some(status) => status,
        None => {
            *instance.socket.lock().unwrap() = Some(running.socket.clone());
            deployment.note(format!("{name}: ready"));
            deployment.transition("");
            deployment.ready.notify_waiters();
            let idle = idle_stop(deployment, instance);
            tokio::select! {
                status = running.child.wait() => status,
                () = idle => {
                    let _ = instance.stop.send_replace(true);
                    return None;
                }
            }
        }
    };
    drop(running);
    let _ = forwarded.await;
    Some(match status {
        Ok(status) => format!("exited ({status})"),
        Err(e) => format!("lost its process ({e})"),
    })
}

/// Ends when the instance is beyond `min_scale` and had no request for [`IDLE_AFTER`].
async fn idle_stop(deployment: &Deployment, instance: &InstanceState) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let beyond = {
            let state = deployment.state.lock().unwrap();
            let rank = state.instances.iter().position(|i| i.id == instance.id);
            rank.is_some_and(|r| r >= deployment.expose.min_scale as usize)
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
async fn answers(socket: &Path, path: &str) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket).await else {
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

/// The instance's output into the service's log, line by line.
async fn forward(mut output: tokio::net::unix::pipe::Receiver, deployment: Arc<Deployment>) {
    let mut splitter = LineSplitter::with_limit(16 * 1024);
    let mut lines = Vec::new();
    let mut buffer = vec![0; 16 * 1024];
    loop {
        match output.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => splitter.push(&buffer[..read], &mut lines),
        }
        for text in lines.drain(..) {
            deployment.push(Line::now(Stream::Out, text));
        }
    }
    if let Some(text) = splitter.finish() {
        deployment.push(Line::now(Stream::Out, text));
    }
}
