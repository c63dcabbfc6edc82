//! Executors run one job's supervisor somewhere: a local process in embedded mode, a
//! Kubernetes Job in production. Both receive the same [`Execution`].

use std::collections::BTreeMap;
use std::time::Duration;

use model::function::Report;
use model::function::config::{FunctionConfig, Provider};
use model::service::StorageIo;
use model::service::mount::Mount;

use super::logs::LogSink;
use model::AppResult;
use model::service::{Service, quantity};
use model::system::NodeStatus;

/// The `namespace` of volumes off Kubernetes.
pub const EMBEDDED_NAMESPACE: &str = "embedded";

/// Everything a job needs to run, independent of where it runs.
#[derive(Debug, Clone)]
pub struct Execution {
    /// The job name (`JOB_UUID`).
    pub job: String,
    /// `function_config.yaml`.
    pub config: FunctionConfig,
    pub script: String,
    /// The job's `EVENT` (given apart from the environment: it may be a whole file).
    pub event: EventBody,
    /// The job's environment: the service's variables, `JOB_UUID`, …
    pub env: Vec<(String, String)>,
    /// The service's `environment.secrets`, added to the environment (from the service's own
    /// Secret in Kubernetes, so they never appear in a Job's spec).
    pub secrets: Vec<(String, String)>,
    pub timeout: Duration,
    /// Memory limit in bytes, from the service's `memory`.
    pub memory: Option<u64>,
    /// Whether the caller waits for a response body.
    pub sync: bool,
    /// Keys for `minio.default`, handed to the job apart from its configuration (a mounted
    /// Secret in Kubernetes, 0600 files locally).
    pub store_keys: (String, String),
    /// What the image executor signs in to the image's registry with, from the service's
    /// `image_pull_secrets` (Kubernetes reads those Secrets itself).
    pub pull_credentials: Option<images::Credentials>,
    /// The service's managed volume, mounted read-write.
    pub volume: Option<JobVolume>,
    /// The service's `mount`, seen at `/mnt/<path>`.
    pub mount: Option<Mount>,
}

/// A managed volume as a job mounts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobVolume {
    pub name: String,
    pub mount_path: String,
    /// What it may hold.
    pub bytes: u64,
}

/// A job's event: its stored text, or a `/run` body spooled to a file as it arrived (never
/// held in memory whole).
#[derive(Debug, Clone)]
pub enum EventBody {
    Text(String),
    File(std::path::PathBuf),
}

impl EventBody {
    /// The event as text (invalid UTF-8 replaced), for executors that pass it by value.
    pub async fn read(&self) -> std::io::Result<String> {
        match self {
            Self::Text(text) => Ok(text.clone()),
            Self::File(path) => {
                Ok(String::from_utf8_lossy(&tokio::fs::read(path).await?).into_owned())
            }
        }
    }
}

impl From<String> for EventBody {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<&str> for EventBody {
    fn from(text: &str) -> Self {
        Self::Text(text.to_string())
    }
}

/// A job that cannot run as its service says: failed, not retried (a missing image, refused
/// credentials, another architecture, a missing volume, a mount that cannot be made stay
/// so), the reason in its log.
pub async fn refused(log: &LogSink, reason: String) -> Finished {
    let _ = log.send(super::logs::note(&reason)).await;
    Finished {
        report: Report::Failed {
            exit_code: None,
            reason,
            outputs: Vec::new(),
        },
        response: None,
    }
}

/// What an execution produced.
#[derive(Debug, Clone)]
pub struct Finished {
    pub report: Report,
    /// The synchronous response, when one was asked for and the run succeeded.
    pub response: Option<Vec<u8>>,
}

#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    /// Runs the execution of `service` to its end, sending its output lines to `log`. `Err`
    /// is a platform failure (could not start, lost the process) with a reason for the user.
    async fn run(
        &self,
        service: &Service,
        execution: Execution,
        log: LogSink,
    ) -> Result<Finished, String>;

    /// Ends a run of `job` whose [`Executor::run`] future was dropped because it was asked to
    /// stop: the local executors' processes die with the future; a cluster's Job must go.
    async fn stop(&self, _service: &Service, _job: &str) -> Result<(), String> {
        Ok(())
    }

    /// Why a submitted run of `job` has not started yet (a cluster with no room for its
    /// pod), or None once it runs; a federated service's job may then go to a member. The
    /// local executors start what they are given at once.
    async fn unstarted(&self, _service: &Service, _job: &str) -> Option<String> {
        None
    }

    /// Refuses what a service to be created or updated may not use where its jobs run
    /// (another user's image pull Secret), before anything is prepared or stored.
    async fn check_service(&self, _service: &Service) -> AppResult<()> {
        Ok(())
    }

    /// Whether this executor pulls services' images itself, signing in with their owners'
    /// registry credentials (`image_pull_secrets` then name those, not Kubernetes Secrets).
    fn pulls_images(&self) -> bool {
        false
    }

    /// How far a pull of `image` under way is, in percent; None when none runs here.
    fn image_pull(&self, _image: &str) -> Option<u8> {
        None
    }

    /// Prepares where a created or updated service's jobs and instances run, with its
    /// secrets (stored apart, by path: `environment.secrets.<name>`, provider credentials).
    /// Local processes need nothing.
    async fn service_saved(
        &self,
        _service: &Service,
        _secrets: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        Ok(())
    }

    /// Removes what the service's jobs left where they ran.
    async fn service_deleted(&self, _service: &Service) -> Result<(), String> {
        Ok(())
    }

    /// The machines jobs run on, for `/system/status`: this host unless jobs run elsewhere.
    /// `running` is what the platform's running jobs asked for, the requests on this host (a
    /// cluster counts its pods' own).
    async fn nodes(&self, running: Requested) -> Result<Vec<NodeStatus>, String> {
        let mut host = crate::host::node().await;
        host.cpu.request_cores = running.cpu_millis;
        host.memory.request_bytes = running.memory_bytes;
        Ok(vec![host])
    }

    /// How many volumes a user may have and how large.
    fn volume_limits(&self) -> crate::volumes::Limits {
        crate::volumes::Limits::default()
    }

    /// Where `owner`'s volume `name` lives: the namespace and the PersistentVolumeClaim on a
    /// cluster; `embedded` and no claim here.
    fn volume_location(&self, _owner: &str, _name: &str) -> (String, String) {
        (EMBEDDED_NAMESPACE.into(), String::new())
    }

    /// Makes the storage of `owner`'s volume `name` of `bytes`.
    async fn create_volume(&self, _owner: &str, _name: &str, _bytes: u64) -> Result<(), String> {
        Err("this platform's executor keeps no volumes".into())
    }

    /// Removes the storage of a volume and what it holds.
    async fn delete_volume(&self, _owner: &str, _name: &str) -> Result<(), String> {
        Ok(())
    }

    /// The volume's phase (`Bound` when usable) and a message when it is not.
    async fn volume_phase(&self, _owner: &str, _name: &str) -> (String, String) {
        (
            "Lost".into(),
            "this platform's executor keeps no volumes".into(),
        )
    }

    /// The version of the Kubernetes cluster jobs run on (`GET /version`'s `gitVersion`), for
    /// `/system/info`; None off Kubernetes or when the cluster does not answer.
    async fn kubernetes_version(&self) -> Option<String> {
        None
    }
}

/// CPU (millicores), memory (bytes) and GPUs a job asks for (or running jobs together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requested {
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub gpus: i64,
}

impl Requested {
    /// What each job of `service` asks for (validated quantities; 0 where none is set).
    pub fn of(service: &Service) -> Self {
        let amount = |text: &str, scale: f64| {
            quantity::parse(text).map_or(0, |v| (v * scale).round() as i64)
        };
        Self {
            cpu_millis: amount(&service.cpu, 1000.0),
            memory_bytes: amount(&service.memory, 1.0),
            gpus: i64::from(service.enable_gpu),
        }
    }
}

/// Where jobs reach the platform's object store as `minio.default`.
#[derive(Debug, Clone)]
pub struct StorageAccess {
    /// As jobs reach it (`OSCAR_JOB_S3_ENDPOINT`).
    pub endpoint: String,
    /// As clients elsewhere reach it (`OSCAR_S3_PUBLIC_URL`): users' S3 clients, federation
    /// members' copies.
    pub public_endpoint: String,
    pub region: String,
    /// The root keys of the store.
    pub access_key: String,
    pub secret_key: String,
    /// Whether the store accepts the keys this platform issues (the embedded one does): then
    /// each job gets its own key instead of the root keys (`store_keys`).
    pub scoped_keys: bool,
}

/// How long a reachability check of the store may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl StorageAccess {
    /// Whether the store's address accepts connections (as jobs reach it).
    pub async fn reachable(&self) -> bool {
        let Some(address) = authority(&self.endpoint) else {
            return true;
        };
        matches!(
            tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address)).await,
            Ok(Ok(_))
        )
    }
}

/// `host:port` of an endpoint URL, with the scheme's default port.
fn authority(endpoint: &str) -> Option<String> {
    let uri: http::Uri = endpoint.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    Some(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

impl Execution {
    /// Builds the execution of a stored service (with its secrets put back) for an event.
    pub fn new(
        job: &str,
        service: &Service,
        secrets: &BTreeMap<String, String>,
        event: impl Into<EventBody>,
        storage: &StorageAccess,
        timeout: Duration,
        sync: bool,
    ) -> Self {
        let mut env: Vec<(String, String)> = service
            .environment
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.extend([
            ("JOB_UUID".to_string(), job.to_string()),
            ("OSCAR_SERVICE_NAME".to_string(), service.name.clone()),
            ("OSCAR_SERVICE_BASE_PATH".to_string(), String::new()),
        ]);
        if !service.log_level.is_empty() {
            env.push(("LOG_LEVEL".to_string(), service.log_level.clone()));
        }
        Self {
            job: job.to_string(),
            config: function_config(service, secrets, storage),
            script: service.script.clone(),
            event: event.into(),
            env,
            secrets: secret_variables(secrets),
            timeout,
            memory: memory_limit(service),
            sync,
            store_keys: crate::store_keys::for_job(storage, job),
            pull_credentials: None,
            volume: None,
            mount: Mount::of(service),
        }
    }
}

/// The service's `memory` in bytes, the limit of each of its processes.
pub fn memory_limit(service: &Service) -> Option<u64> {
    quantity::parse(&service.memory)
        .ok()
        .filter(|bytes| *bytes >= 1.0)
        .map(|bytes| bytes as u64)
}

/// The values of `environment.secrets`, by variable name.
pub fn secret_variables(secrets: &BTreeMap<String, String>) -> Vec<(String, String)> {
    secrets
        .iter()
        .filter_map(|(path, value)| {
            path.strip_prefix("environment.secrets.")
                .map(|key| (key.to_string(), value.clone()))
        })
        .collect()
}

/// The supervisor's view of a service: inputs, outputs, and providers with their
/// credentials; `minio.default` is the platform store, whose keys travel apart.
pub(crate) fn function_config(
    service: &Service,
    secrets: &BTreeMap<String, String>,
    storage: &StorageAccess,
) -> FunctionConfig {
    let mut config = provider_config(service, secrets);
    config
        .storage_providers
        .entry("minio".into())
        .or_default()
        .insert(
            "default".into(),
            Provider {
                endpoint: storage.endpoint.clone(),
                region: storage.region.clone(),
                ..Provider::default()
            },
        );
    config
}

/// The service's inputs, outputs and declared providers with their credentials put back:
/// what reaching its providers takes, for a job or for the platform polling its inputs.
pub(crate) fn provider_config(
    service: &Service,
    secrets: &BTreeMap<String, String>,
) -> FunctionConfig {
    let io = |entries: &[model::service::StorageIo]| -> Vec<StorageIo> {
        entries
            .iter()
            .map(|e| StorageIo {
                storage_provider: e.storage_provider.clone(),
                path: e.path.clone(),
                prefix: e.prefix.clone(),
                suffix: e.suffix.clone(),
            })
            .collect()
    };
    let mut providers: BTreeMap<String, BTreeMap<String, Provider>> = service
        .inactive
        .get("storage_providers")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    // Credentials are stored apart (`services::take_secrets`): each goes back in its place.
    for (path, value) in secrets {
        let Some(rest) = path.strip_prefix("storage_providers.") else {
            continue;
        };
        // `kind.id.field`, where only the id may hold dots.
        if let Some((provider, field)) = rest.rsplit_once('.')
            && let Some((kind, id)) = provider.split_once('.')
            && let Some(provider) = providers.get_mut(kind).and_then(|p| p.get_mut(id))
        {
            provider.set_field(field, value.clone());
        }
    }
    FunctionConfig {
        name: service.name.clone(),
        input: io(&service.input),
        output: io(&service.output),
        storage_providers: providers,
        log_level: service.log_level.clone(),
        file_stage_in: service.file_stage_in,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_credentials_stored_apart_go_back_in_their_place() {
        let mut service: Service = serde_json::from_value(serde_json::json!({
            "name": "s", "image": "alpine", "script": "true",
            "storage_providers": {
                "webdav": {"dcache.site": {"hostname": "h", "login": "u", "password": "pw"}},
                "onedata": {"hub": {"oneprovider_host": "p", "token": "tk", "space": "sp"}},
                "s3": {"aws": {"access_key": "ak", "secret_key": "sk", "region": "eu-west-1"}}
            }
        }))
        .unwrap();
        let secrets = crate::services::take_secrets(&mut service);
        let storage = StorageAccess {
            endpoint: "http://127.0.0.1:9000".into(),
            public_endpoint: "http://127.0.0.1:9000".into(),
            region: "us-east-1".into(),
            access_key: "root".into(),
            secret_key: "rootsecret".into(),
            scoped_keys: true,
        };
        let config = function_config(&service, &secrets, &storage);
        let field = |id: &str, name: &str| config.provider(id).unwrap().field(name).to_string();
        assert_eq!(field("webdav.dcache.site", "password"), "pw");
        assert_eq!(field("webdav.dcache.site", "login"), "u");
        assert_eq!(field("onedata.hub", "token"), "tk");
        assert_eq!(field("s3.aws", "secret_key"), "sk");
        // The platform store's keys travel apart, never in the configuration.
        assert_eq!(field("minio.default", "secret_key"), "");
    }

    #[test]
    fn the_store_is_probed_at_the_endpoints_host_and_port() {
        assert_eq!(
            authority("http://127.0.0.1:9000").as_deref(),
            Some("127.0.0.1:9000")
        );
        assert_eq!(
            authority("https://minio.example.org/").as_deref(),
            Some("minio.example.org:443")
        );
        assert_eq!(
            authority("http://minio.oscar").as_deref(),
            Some("minio.oscar:80")
        );
        assert_eq!(
            authority("http://[::1]:9000").as_deref(),
            Some("[::1]:9000")
        );
        assert_eq!(authority("not a url"), None);
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let storage = StorageAccess {
            endpoint: format!("http://127.0.0.1:{port}"),
            public_endpoint: format!("http://127.0.0.1:{port}"),
            region: "us-east-1".into(),
            access_key: String::new(),
            secret_key: String::new(),
            scoped_keys: false,
        };
        assert!(storage.reachable().await);
        drop(listener);
        assert!(!storage.reachable().await);
    }
}
