//! Builds the running application from a [`Config`]: one function for `main` and the tests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use app::web::state::AppState;
use domain::App;
use domain::auth::{AdminAccount, LoginThrottle};
use domain::db::Database;
use domain::exposed::{Exposed, Runtime};
use domain::jobs::executor::{Executor, StorageAccess};
use domain::jobs::local::{LocalExecutor, ServiceImages};
use domain::jobs::sandbox::{self, Loader, Sandbox};
use domain::jobs::{self, Jobs, Trigger, events, polling};
use domain::kubernetes::Namespacing;
use domain::kubernetes::executor::KubernetesExecutor;
use domain::metrics::Metrics;
use domain::oidc::Oidc;
use domain::sessions::Sessions;
use domain::store::Store;
use domain::{quotas, store_keys};
use embedded_s3::{EmbeddedS3, KeyRing, Keys, Notification, Reach};
use leptos::config::LeptosOptions;
use model::AppError;
use model::system::PlatformInfo;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tower_sessions::ExpiredDeletion;

use crate::config::{Config, ExecutorConfig, ImageSettings, S3Credentials, Secret, Storage};
use crate::secrets;

/// The embedded store asks the platform about the keys it issued to users and jobs, and
/// about the room its buckets' owners have left.
struct PlatformKeys {
    db: Database,
    root_secret: String,
    /// A client of the store itself, to add up what an owner stores (set once it listens).
    store: Arc<std::sync::OnceLock<aws_sdk_s3::Client>>,
}

#[async_trait::async_trait]
impl KeyRing for PlatformKeys {
    async fn secret_key(&self, access_key: &str) -> Result<Option<String>, String> {
        store_keys::secret(&self.db, &self.root_secret, access_key)
            .await
            .map_err(|e| e.to_string())
    }

    async fn reach(&self, access_key: &str, bucket: &str) -> Result<Reach, String> {
        store_keys::reach(&self.db, access_key, bucket)
            .await
            .map_err(|e| e.to_string())
    }

    async fn room(&self, bucket: &str) -> Result<Option<(u64, String)>, String> {
        let Some(s3) = self.store.get() else {
            return Ok(None);
        };
        let owner = domain::buckets::records::owner_of(&self.db, bucket)
            .await
            .map_err(|e| e.to_string())?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        let room = quotas::storage_room(&self.db, s3, &owner)
            .await
            .map_err(|e| e.to_string())?;
        Ok(room.map(|room| (room, quotas::over_storage(&owner, room).to_string())))
    }
}

/// How often expired sessions are removed from the database.
const SESSION_CLEANUP_EVERY: Duration = Duration::from_secs(600);

/// The application with everything it started; [`Application::shutdown`] stops it in order.
pub struct Application {
    pub state: AppState,
    pub router: axum::Router,
    embedded_s3: Option<EmbeddedS3>,
    stop: watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
}

/// Builds the application in named steps; each names the setting at fault when it fails.
pub async fn build(config: &Config) -> anyhow::Result<Application> {
    let data_dir = data_dir(config)?;
    let database = open_database(config, &data_dir).await?;
    let secrets_dir = data_dir.join("secrets");
    let (notifier, notifications) = mpsc::channel::<Notification>(256);
    let store = open_store(config, &data_dir, &secrets_dir, &database.db, notifier).await?;
    let admin = admin_account(config, &secrets_dir)?;

    let (stop, stopped) = watch::channel(false);
    let mut background = Vec::new();
    let storage = storage_access(config, &store);
    let (executor, runtime, executor_description) =
        start_executor(config, &data_dir, &storage, &stopped, &mut background).await?;
    let exposed = Arc::new(Exposed::new(
        runtime,
        emptied(&data_dir, "exposed")?,
        storage.clone(),
    ));
    let info = platform_info(config, &store, &database.db, executor_description);
    let jobs = job_queue(config, &data_dir, executor, storage)?;
    jobs.use_warm_workers(exposed.clone());

    let oidc = config
        .oidc
        .clone()
        .map(Oidc::new)
        .transpose()
        .context("OIDC_ISSUER: cannot prepare the identity provider client")?;
    if let Some(oidc) = &oidc {
        jobs.peers().use_oidc(oidc.clone(), database.db.clone());
    }
    let platform = App {
        db: database.db,
        services: Default::default(),
        s3: Store {
            client: s3_client(&store.endpoint, &config.s3_region, &store.credentials),
            notify_arn: config.notify_arn.clone(),
            webhook_token: config.webhook_token.as_ref().map(|t| t.0.clone()),
            upload_limit: config.upload_limit,
            changes: Default::default(),
        },
        admin,
        login_throttle: LoginThrottle::new(config.trusted_proxies.clone()),
        oidc,
        jobs,
        exposed,
        access_log: Default::default(),
        info,
    };
    let state = AppState::new(
        platform,
        leptos_options(config.site_root.clone()),
        config.secure_cookies,
    );
    let router = crate::router::router(state.clone(), database.sessions.clone());
    background.extend(start_background_tasks(
        config,
        &state,
        database.sessions,
        &database.url,
        notifications,
        stopped,
    ));
    Ok(Application {
        state,
        router,
        embedded_s3: store.embedded,
        stop,
        background,
    })
}

/// `OSCAR_DATA_DIR`, created and made absolute.
fn data_dir(config: &Config) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "OSCAR_DATA_DIR: cannot create {}",
            config.data_dir.display()
        )
    })?;
    let data_dir = config.data_dir.canonicalize().with_context(|| {
        format!(
            "OSCAR_DATA_DIR: cannot resolve {}",
            config.data_dir.display()
        )
    })?;

    Ok(data_dir)
}

/// The platform database and the session store in it.
struct OpenDatabase {
    db: Database,
    sessions: Sessions,
    url: String,
}

/// Connects `DATABASE_URL` (or SQLite in the data dir) and applies the migrations.
async fn open_database(
    config: &Config,
    data_dir: &std::path::Path,
) -> anyhow::Result<OpenDatabase> {
    let database_url = config
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("oscar.db").display()));
    let shown_url = redact_url(&database_url);
    let db = Database::connect(&database_url)
        .await
        .with_context(|| format!("DATABASE_URL: cannot connect to {shown_url}"))?;
    db.migrate()
        .await
        .with_context(|| format!("DATABASE_URL: cannot migrate {shown_url}"))?;
    let sessions = Sessions::open(&database_url).await.with_context(|| {
        format!("DATABASE_URL: cannot prepare the session table in {shown_url}")
    })?;

    Ok(OpenDatabase {
        db,
        sessions,
        url: database_url,
    })
}

/// The object store: where it is, its root credentials, and the embedded server when this
/// process runs it.
struct OpenStore {
    embedded: Option<EmbeddedS3>,
    endpoint: String,
    credentials: S3Credentials,
}

/// Starts the embedded store (`OSCAR_S3_LISTEN`) or takes the external one's settings.
async fn open_store(
    config: &Config,
    data_dir: &std::path::Path,
    secrets_dir: &std::path::Path,
    db: &Database,
    notifier: mpsc::Sender<Notification>,
) -> anyhow::Result<OpenStore> {
    let (embedded_s3, endpoint, credentials) = match &config.storage {
        Storage::External {
            endpoint,
            credentials,
        } => (None, endpoint.clone(), credentials.clone()),
        Storage::Embedded {
            listen,
            credentials,
        } => {
            let credentials = match credentials {
                Some(given) => given.clone(),
                None => embedded_credentials(secrets_dir)?,
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("OSCAR_S3_LISTEN: cannot listen on {listen}"))?;
            let store = Arc::new(std::sync::OnceLock::new());
            let keys = Keys {
                root_access_key: credentials.access_key.clone(),
                root_secret_key: credentials.secret_key.0.clone(),
                ring: Some(Arc::new(PlatformKeys {
                    db: db.clone(),
                    root_secret: credentials.secret_key.0.clone(),
                    store: store.clone(),
                })),
            };
            let server = EmbeddedS3::start(listener, &data_dir.join("s3"), keys, Some(notifier))?;
            let endpoint = server.endpoint_url();
            let _ = store.set(s3_client(&endpoint, &config.s3_region, &credentials));
            (Some(server), endpoint, credentials)
        }
    };
    Ok(OpenStore {
        embedded: embedded_s3,
        endpoint,
        credentials,
    })
}

/// The local admin, with `OSCAR_PASSWORD` or a password generated once into the data dir.
fn admin_account(config: &Config, secrets_dir: &std::path::Path) -> anyhow::Result<AdminAccount> {
    let admin_password = match &config.admin_password {
        Some(given) => given.0.clone(),
        None => {
            let stored = secrets::load_or_generate(secrets_dir, "admin-password", || {
                secrets::random_hex(12)
            })
            .context("OSCAR_DATA_DIR: cannot keep the generated admin password")?;
            if stored.generated {
                // Shown once, on the terminal of whoever started the server; then only the path.
                println!(
                    "Generated a password for the admin account '{}': {}\n(kept in {}; set OSCAR_PASSWORD to choose your own)",
                    config.admin_username,
                    stored.value,
                    stored.path.display()
                );
            } else {
                tracing::info!(file = %stored.path.display(), "admin password read from the data dir");
            }
            stored.value
        }
    };

    Ok(AdminAccount::new(&config.admin_username, admin_password))
}

/// How sandboxed jobs are limited, for the Info page: no cgroup delegation is assumed.
const LIMITS: &str = "memory by RLIMIT_DATA from the service's memory, processes by a watchdog in the job's PID namespace (OSCAR_JOB_PIDS_LIMIT), the job directory's size by a watchdog (OSCAR_JOB_DISK_LIMIT), CPU time by the job's timeout";

/// The executor `OSCAR_EXECUTOR` names, with how the Info page describes it. The Kubernetes
/// executor's watches join `background`.
async fn start_executor(
    config: &Config,
    data_dir: &std::path::Path,
    storage: &StorageAccess,
    stopped: &watch::Receiver<bool>,
    background: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<(Arc<dyn Executor>, Runtime, String)> {
    Ok(match &config.executor {
        ExecutorConfig::Image(settings) => {
            let local = Arc::new(local_executor(config, data_dir, Some(settings))?);
            let description = format!(
                "processes on this machine, each in its service's image (pulled into a cache of at most {} MB) and in a sandbox (bubblewrap); {LIMITS}",
                settings.cache_limit >> 20
            );
            (local.clone(), Runtime::Local(local), description)
        }
        ExecutorConfig::Host => {
            let local = Arc::new(local_executor(config, data_dir, None)?);
            let description = if local.sandbox.is_some() {
                format!(
                    "processes on this machine, each in a sandbox (bubblewrap) with this machine's programs (the service image is not used); {LIMITS}"
                )
            } else {
                "processes on this machine, NOT sandboxed: scripts can read everything this server can (the service image is not used)".to_string()
            };
            (local.clone(), Runtime::Local(local), description)
        }
        ExecutorConfig::Kubernetes {
            cluster,
            kubeconfig,
        } => {
            let client = kube_client(kubeconfig.as_deref()).await?;
            let (executor, tasks) = KubernetesExecutor::start(
                client,
                cluster.clone(),
                storage.clone(),
                stopped.clone(),
            );
            background.extend(tasks);
            let description = match cluster.namespacing {
                Namespacing::Shared => {
                    format!("Kubernetes Jobs in namespace {}", cluster.namespace)
                }
                Namespacing::PerUser => format!(
                    "Kubernetes Jobs in one namespace per user ({}-…)",
                    cluster.namespace
                ),
            };
            let runtime = Runtime::Cluster(Box::new(executor.cluster().clone()));
            (Arc::new(executor), runtime, description)
        }
    })
}

/// Fixed facts about this deployment, shown on the Info page and by `GET /system/info`.
fn platform_info(
    config: &Config,
    store: &OpenStore,
    db: &Database,
    executor: String,
) -> PlatformInfo {
    let embedded = store.embedded.is_some();
    PlatformInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: option_env!("OSCAR_GIT_COMMIT")
            .unwrap_or("unknown")
            .to_string(),
        mode: if embedded && config.database_url.is_none() {
            "embedded"
        } else {
            "external"
        }
        .to_string(),
        storage: if embedded {
            "embedded S3 (s3s)"
        } else {
            "external S3"
        }
        .to_string(),
        storage_endpoint: store.endpoint.clone(),
        database: db.kind().label().to_string(),
        executor,
        started: model::Timestamp::now(),
    }
}

/// Where jobs and instances reach the platform's store, and with which keys.
fn storage_access(config: &Config, store: &OpenStore) -> StorageAccess {
    StorageAccess {
        endpoint: config
            .job_s3_endpoint
            .clone()
            .unwrap_or_else(|| store.endpoint.clone()),
        public_endpoint: config
            .s3_public_url
            .clone()
            .unwrap_or_else(|| store.endpoint.clone()),
        region: config.s3_region.clone(),
        access_key: store.credentials.access_key.clone(),
        secret_key: store.credentials.secret_key.0.clone(),
        scoped_keys: store.embedded.is_some(),
    }
}

/// The job queue with its settings, executor and the store's address for jobs; the spool of
/// `/run` bodies starts empty.
fn job_queue(
    config: &Config,
    data_dir: &std::path::Path,
    executor: Arc<dyn Executor>,
    storage: StorageAccess,
) -> anyhow::Result<Jobs> {
    let mut job_settings = config.jobs.clone();
    job_settings.spool = emptied(data_dir, "spool")?;
    let metrics = Arc::new(Metrics::new(
        config.metrics_token.as_ref().map(|t| t.0.clone()),
    ));
    Ok(Jobs::new(job_settings, executor, metrics, storage))
}

/// Session cleanup, OIDC discovery, the job dispatcher, the embedded store's notifications,
/// job changes shared over PostgreSQL, the reconciler.
fn start_background_tasks(
    config: &Config,
    state: &AppState,
    sessions: Sessions,
    database_url: &str,
    notifications: mpsc::Receiver<Notification>,
    stopped: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut background = Vec::new();
    background.extend([
        tokio::spawn(delete_expired_sessions(sessions, stopped.clone())),
        tokio::spawn({
            let (oidc, stopped) = (state.oidc.clone(), stopped.clone());
            async move {
                if let Some(oidc) = oidc {
                    oidc.warm_up(stopped).await;
                }
            }
        }),
        tokio::spawn(jobs::dispatch::run(
            state.db.clone(),
            state.jobs.clone(),
            stopped.clone(),
        )),
        tokio::spawn(handle_notifications(
            state.clone(),
            notifications,
            stopped.clone(),
        )),
    ]);
    if state.db.kind() == domain::db::DatabaseKind::Postgres {
        let (jobs, db, url, stopped) = (
            state.jobs.clone(),
            state.db.clone(),
            database_url.to_string(),
            stopped.clone(),
        );
        background.push(tokio::spawn(async move {
            if let Err(err) = jobs.share_changes(&db, &url, stopped).await {
                tracing::warn!(%err, "job changes are no longer shared with other servers");
            }
        }));
    }
    background.push(tokio::spawn(run_exposed(state.clone(), stopped.clone())));
    if let Some(every) = config.jobs.reconcile_every {
        background.push(tokio::spawn(reconcile(
            state.clone(),
            every,
            stopped.clone(),
        )));
    }
    if let Some(every) = config.jobs.poll_every {
        background.push(tokio::spawn(poll(state.clone(), every, stopped)));
    }
    background
}

impl Application {
    /// Stops background tasks and the embedded store (after in-flight requests), then closes
    /// the database.
    pub async fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        for task in self.background.drain(..) {
            let _ = task.await;
        }
        if let Some(s3) = self.embedded_s3.take() {
            s3.shutdown().await;
        }
        self.state.db.close().await;
    }
}

/// The cluster client: from `OSCAR_KUBECONFIG` when given, else in-cluster or `KUBECONFIG`.
async fn kube_client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("OSCAR_KUBECONFIG: cannot read {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .with_context(|| format!("OSCAR_KUBECONFIG: cannot use {}", path.display()))?
        }
        None => kube::Config::infer().await.context(
            "OSCAR_EXECUTOR=kubernetes: no in-cluster service account and no kubeconfig (set OSCAR_KUBECONFIG)",
        )?,
    };
    let mut config = config;
    // Every call has an end: a cluster that stops answering fails the call (and it is retried)
    // instead of holding a job. Reads allow for watches, which the API server ends at 290 s.
    config.connect_timeout = Some(Duration::from_secs(10));
    config.write_timeout = Some(Duration::from_secs(30));
    config.read_timeout = Some(Duration::from_secs(295));
    // Both ring and aws-lc-rs are linked in; kube's TLS needs the process to pick one. An
    // error means one was picked already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    kube::Client::try_from(config)
        .context("OSCAR_EXECUTOR=kubernetes: cannot make a cluster client")
}

fn embedded_credentials(secrets_dir: &std::path::Path) -> anyhow::Result<S3Credentials> {
    let access =
        secrets::load_or_generate(secrets_dir, "s3-access-key", || secrets::random_hex(10))
            .context("OSCAR_DATA_DIR: cannot keep the embedded S3 access key")?;
    let secret =
        secrets::load_or_generate(secrets_dir, "s3-secret-key", || secrets::random_hex(20))
            .context("OSCAR_DATA_DIR: cannot keep the embedded S3 secret key")?;
    tracing::info!(
        access_key = %access.value,
        secret_key_file = %secret.path.display(),
        "embedded S3 credentials (for boto3, mc or aws-cli against the embedded store)"
    );
    Ok(S3Credentials {
        access_key: access.value,
        secret_key: Secret(secret.value),
    })
}

/// The one way the platform talks to object storage, embedded or external (the same client
/// configuration its jobs use).
pub fn s3_client(endpoint: &str, region: &str, credentials: &S3Credentials) -> aws_sdk_s3::Client {
    supervisor::storage::client(
        endpoint,
        region,
        &credentials.access_key,
        &credentials.secret_key.0,
    )
}

/// The image or host executor: this binary's `supervise` (or `OSCAR_SUPERVISOR`), each job in
/// the sandbox, in its service's image when `images` are set. Without a sandbox (no
/// bubblewrap, user namespaces off) images cannot run, and host jobs could read the data dir's
/// secrets, the database and every user's files, so that is refused while several users can
/// sign in, unless `OSCAR_ALLOW_UNSANDBOXED_JOBS` says otherwise.
fn local_executor(
    config: &Config,
    data_dir: &std::path::Path,
    images: Option<&ImageSettings>,
) -> anyhow::Result<LocalExecutor> {
    let rclone = domain::jobs::rclone::Rclone::find();
    // Mounts a killed server left would stop its jobs' and instances' directories from going.
    if let Ok(rclone) = &rclone {
        rclone.release_left_over(&data_dir.join("jobs"));
        rclone.release_left_over(&data_dir.join("exposed"));
    }
    let work_root = emptied(data_dir, "jobs")?;
    let mut supervisor = match &config.supervisor {
        Some(command) => command.clone(),
        None => vec![
            std::env::current_exe()
                .context("cannot find this program to run jobs with (set OSCAR_SUPERVISOR)")?
                .to_string_lossy()
                .into_owned(),
            "supervise".into(),
        ],
    };
    for mount in &config.job_mounts {
        let path = mount
            .path
            .canonicalize()
            .ok()
            .filter(|p| p.is_dir())
            .with_context(|| {
                format!(
                    "OSCAR_JOB_MOUNTS: {} is not a directory",
                    mount.path.display()
                )
            })?;
        // Jobs must never see the data directory (secrets, database, everyone's files).
        if path.starts_with(data_dir) || data_dir.starts_with(&path) {
            anyhow::bail!(
                "OSCAR_JOB_MOUNTS: {} overlaps the data directory {}, which jobs must never see",
                mount.path.display(),
                data_dir.display()
            );
        }
    }
    let probed = Sandbox::probe(&work_root, config.job_mounts.clone());
    let sandbox = match (probed, images) {
        (Err(why), Some(_)) => anyhow::bail!(
            "jobs run in their service's image inside a sandbox, and bubblewrap cannot make one here ({why}). Install bubblewrap and allow unprivileged user namespaces, or set OSCAR_EXECUTOR=host to run scripts with this machine's programs"
        ),
        (probed, _) => sandbox_or_why(probed, config.oidc.is_some(), config.allow_unsandboxed_jobs)
            .map_err(anyhow::Error::msg)?,
    };
    if sandbox.is_some() {
        // The sandbox binds the supervisor by its path.
        let program = sandbox::find_program(&supervisor[0])
            .with_context(|| format!("OSCAR_SUPERVISOR: {} is not a program", supervisor[0]))?;
        supervisor[0] = program.to_string_lossy().into_owned();
    }
    let images = match images {
        Some(settings) => Some(service_images(settings, data_dir, &supervisor[0])?),
        None => None,
    };
    Ok(LocalExecutor {
        supervisor,
        slots: domain::jobs::slots::JobSlots::new(work_root),
        sandbox,
        images,
        pids_limit: config.job_pids_limit,
        disk_limit: config.job_disk_limit,
        volumes_root: data_dir.join("volumes"),
        volume_limits: config.volume_limits,
        rclone,
    })
}

/// The image cache (`images/` in the data dir) and how the supervisor starts in an image.
fn service_images(
    settings: &ImageSettings,
    data_dir: &std::path::Path,
    supervisor: &str,
) -> anyhow::Result<ServiceImages> {
    let cache = images::Images::open(images::Settings {
        dir: data_dir.join("images"),
        limit: settings.cache_limit,
        tag_refresh: settings.tag_refresh,
        mirrors: settings.mirrors.clone(),
        insecure: settings.insecure.clone(),
    })
    .context("OSCAR_DATA_DIR: cannot open the image cache")?;
    let loader = Loader::of(std::path::Path::new(supervisor)).map_err(anyhow::Error::msg)?;
    Ok(ServiceImages { cache, loader })
}

/// Whether jobs may run without the sandbox the probe could not make: not while several users
/// share the machine, unless the operator said so.
fn sandbox_or_why<S>(
    probed: Result<S, String>,
    several_users: bool,
    allow_unsandboxed: bool,
) -> Result<Option<S>, String> {
    match probed {
        Ok(sandbox) => Ok(Some(sandbox)),
        Err(why) if several_users && !allow_unsandboxed => Err(format!(
            "jobs cannot be sandboxed on this host ({why}), and with OIDC sign-in several users would share it: a job could read the platform's secrets and every user's files. Install bubblewrap and allow unprivileged user namespaces, use OSCAR_EXECUTOR=kubernetes, or set OSCAR_ALLOW_UNSANDBOXED_JOBS=true to run them unsandboxed anyway"
        )),
        Err(why) => {
            tracing::warn!(%why, "jobs run unsandboxed: a job can read everything this server can");
            Ok(None)
        }
    }
}

/// A directory of the data dir for what lives only while the server runs: jobs' working
/// directories (the jobs themselves are queued again from the database) and `/run` bodies
/// (their callers are gone). What a killed server left there is removed; the directory itself
/// stays: it may be a volume of its own, mounted there.
fn emptied(data_dir: &std::path::Path, name: &str) -> anyhow::Result<PathBuf> {
    let root = data_dir.join(name);
    std::fs::create_dir_all(&root)
        .with_context(|| format!("OSCAR_DATA_DIR: cannot create {}", root.display()))?;
    let clean = || -> std::io::Result<()> {
        for entry in std::fs::read_dir(&root)? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    };
    clean().with_context(|| format!("OSCAR_DATA_DIR: cannot clean {}", root.display()))?;
    Ok(root)
}

/// How long queuing a stored object's job is retried while the database is unavailable (the
/// store waits up to 10 s for the answer before acknowledging the upload anyway).
const QUEUE_RETRY_FOR: Duration = Duration::from_secs(8);

/// Objects created in the embedded store become jobs; the store answers the upload once
/// this is done.
async fn handle_notifications(
    state: AppState,
    mut notifications: mpsc::Receiver<Notification>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let notification = tokio::select! {
            received = notifications.recv() => match received {
                Some(notification) => notification,
                None => return,
            },
            _ = stopped.changed() => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let object = &notification.object;
            state.s3.changed(&object.bucket);
            let stored = events::Stored {
                event_name: object.event_name,
                bucket: &object.bucket,
                key: &object.key,
                trigger: Trigger::Bucket,
                signer: object.signer.as_deref(),
            };
            // A database restart is waited out while the uploader waits for its answer.
            let deadline = tokio::time::Instant::now() + QUEUE_RETRY_FOR;
            let mut pause = Duration::from_millis(100);
            loop {
                match events::stored_object(
                    &state.db,
                    &state.services,
                    &state.jobs,
                    &state.s3.client,
                    stored,
                )
                .await
                {
                    Err(AppError::Unavailable(_)) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                    Err(err) => {
                        tracing::warn!(bucket = %object.bucket, key = %object.key, %err, "cannot queue a job for a stored object; the reconciler will retry");
                        break;
                    }
                    Ok(_) => break,
                }
            }
            let _ = notification.handled.send(());
        });
    }
}

/// Lists input folders now (events may have been lost while the server was down) and then
/// periodically.
async fn reconcile(state: AppState, every: Duration, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(err) = events::reconcile(&state.db, &state.services, &state.jobs, &state.s3.client).await {
                    tracing::warn!(%err, "reconciler pass failed");
                }
            }
            _ = stopped.changed() => return,
        }
    }
}

/// Lists the input folders in other providers now and then periodically: they send no events.
async fn poll(state: AppState, every: Duration, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    // A slow server makes a pass late, not several at once.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(err) = polling::poll(&state.db, &state.services, &state.jobs).await {
                    tracing::warn!(%err, "polling pass failed");
                }
            }
            _ = stopped.changed() => return,
        }
    }
}

/// How often exposed services are matched to the catalog (a change made on another server,
/// a service deleted); changes made here apply at once.
const EXPOSED_EVERY: Duration = Duration::from_secs(2);
/// How often idle services with `min_scale: 0` are looked for on the cluster.
const IDLE_SCAN_EVERY: Duration = Duration::from_secs(30);

/// Keeps the exposed services' instances matching the catalog and, on a cluster, scales idle
/// ones to zero; stops them all at shutdown.
async fn run_exposed(state: AppState, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(EXPOSED_EVERY);
    let mut idle = tokio::time::interval(IDLE_SCAN_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(err) = state.exposed.reconcile(&state.db, &state.services).await {
                    tracing::warn!(%err, "exposed services: reconciliation failed");
                }
            }
            _ = idle.tick() => {
                if let Err(err) = state.exposed.scale_idle(&state.db, &state.services).await {
                    tracing::warn!(%err, "exposed services: the idle scan failed");
                }
            }
            _ = stopped.changed() => break,
        }
    }
    state.exposed.stop_all().await;
}

fn leptos_options(site_root: PathBuf) -> LeptosOptions {
    if !site_root.join("pkg").is_dir() {
        tracing::warn!(
            site_root = %site_root.display(),
            "no compiled site here: pages render without styles or interactivity (build with `make build`, or set LEPTOS_SITE_ROOT)"
        );
    }
    LeptosOptions::builder()
        // cargo-leptos sets it while compiling; `oscar` is the name in Cargo.toml's metadata.
        .output_name(option_env!("LEPTOS_OUTPUT_NAME").unwrap_or("oscar"))
        .site_root(site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .build()
}

async fn delete_expired_sessions(sessions: Sessions, mut stopped: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(SESSION_CLEANUP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {
                if let Err(err) = sessions.delete_expired().await {
                    tracing::warn!(%err, "could not delete expired sessions");
                }
            }
            _ = stopped.changed() => return,
        }
    }
}

/// The URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{redact_url, sandbox_or_why};

    #[test]
    fn jobs_run_unsandboxed_only_for_a_single_user_or_when_allowed() {
        let missing = || Err::<(), _>("bubblewrap (bwrap) is not installed".to_string());
        assert_eq!(sandbox_or_why(Ok(()), true, false), Ok(Some(())));
        assert_eq!(sandbox_or_why(missing(), false, false), Ok(None));
        assert_eq!(sandbox_or_why(missing(), true, true), Ok(None));
        let refused = sandbox_or_why(missing(), true, false).unwrap_err();
        assert!(refused.contains("bwrap) is not installed"), "{refused}");
        assert!(
            refused.contains("OSCAR_ALLOW_UNSANDBOXED_JOBS=true"),
            "{refused}"
        );
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
