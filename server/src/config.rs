//! Configuration from the environment, validated before anything starts. Every error names
//! the variable to fix. README.md lists every variable with its default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use domain::jobs::JobSettings;
use domain::jobs::sandbox::JobMount;
use domain::kubernetes::{ClusterSettings, ExposedRoutes, Namespacing, RouteKind};
use domain::oidc::OidcSettings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.var, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A value that must not reach logs: Debug prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Root credentials of an S3 endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Credentials {
    pub access_key: String,
    pub secret_key: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// The embedded S3 server, on this address, with data under the data dir. Credentials are
    /// generated into the data dir when not given.
    Embedded {
        listen: SocketAddr,
        credentials: Option<S3Credentials>,
    },
    /// An external MinIO / RustFS / S3 endpoint.
    External {
        endpoint: String,
        credentials: S3Credentials,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// None: SQLite in the data dir.
    pub database_url: Option<String>,
    pub storage: Storage,
    pub s3_region: String,
    pub admin_username: String,
    /// None: generated once and kept in the data dir.
    pub admin_password: Option<Secret>,
    pub secure_cookies: bool,
    /// Proxies whose `X-Forwarded-For` names the client (`OSCAR_TRUSTED_PROXIES`: addresses
    /// or networks, comma-separated); the sign-in throttle keys on that client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub log_format: LogFormat,
    /// Where cargo-leptos put the compiled site (wasm, js, css, public assets).
    pub site_root: PathBuf,
    pub jobs: JobSettings,
    /// ARN of an external store's webhook target for `/system/store-events`
    /// (`OSCAR_S3_NOTIFY_ARN`): input folders are subscribed to it.
    pub notify_arn: Option<String>,
    /// Largest upload through the dashboard in bytes (`OSCAR_UPLOAD_LIMIT`, default 5 GiB).
    pub upload_limit: u64,
    /// The secret that webhook presents (`OSCAR_WEBHOOK_TOKEN`).
    pub webhook_token: Option<Secret>,
    /// What a Prometheus scraper presents as a bearer token for `/metrics`
    /// (`OSCAR_METRICS_TOKEN`); without it only the admin may read them.
    pub metrics_token: Option<Secret>,
    /// The supervisor command jobs run: `OSCAR_SUPERVISOR` (a path to `oscar-supervisor`), or
    /// None for this binary's `supervise` subcommand.
    pub supervisor: Option<Vec<String>>,
    /// Sign-in and bearer tokens from an OIDC provider (`OIDC_CLIENT_ID` turns it on).
    pub oidc: Option<OidcSettings>,
    /// Run local jobs as plain processes when this host cannot sandbox them, even with
    /// several users (`OSCAR_ALLOW_UNSANDBOXED_JOBS`).
    pub allow_unsandboxed_jobs: bool,
    /// Host directories every sandboxed job sees (`OSCAR_JOB_MOUNTS`).
    pub job_mounts: Vec<JobMount>,
    /// Processes a sandboxed job may have at once (`OSCAR_JOB_PIDS_LIMIT`).
    pub job_pids_limit: u32,
    /// Bytes a local job's directory may hold (`OSCAR_JOB_DISK_LIMIT`).
    pub job_disk_limit: u64,
    /// How many managed volumes a user may have and how large (`OSCAR_VOLUMES_PER_USER`,
    /// `OSCAR_VOLUME_MAX_SIZE`).
    pub volume_limits: domain::volumes::Limits,
    /// Where jobs run (`OSCAR_EXECUTOR`).
    pub executor: ExecutorConfig,
    /// The store's address as jobs reach it (`OSCAR_JOB_S3_ENDPOINT`), when it differs from
    /// the platform's (pods reach the embedded store through a Service, not loopback).
    pub job_s3_endpoint: Option<String>,
    /// The store's address as clients elsewhere reach it (`OSCAR_S3_PUBLIC_URL`), when it
    /// differs from the platform's: what users' S3 clients and federation members get.
    pub s3_public_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorConfig {
    /// Supervised processes on this machine, in their service's image.
    Image(ImageSettings),
    /// Supervised processes on this machine, with its programs.
    Host,
    /// Kubernetes Jobs (`OSCAR_KUBE_*`), reached in-cluster or through `OSCAR_KUBECONFIG`.
    Kubernetes {
        cluster: ClusterSettings,
        kubeconfig: Option<PathBuf>,
    },
}

/// The image executor's cache and registries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSettings {
    /// Bytes of images kept (`OSCAR_IMAGE_CACHE_LIMIT`, a quantity such as `20Gi`).
    pub cache_limit: u64,
    /// How long a tag's digest is trusted before its registry is asked again
    /// (`OSCAR_IMAGE_TAG_REFRESH`, seconds).
    pub tag_refresh: Duration,
    /// `OSCAR_REGISTRY_MIRRORS`: `registry=http(s)://host[:port]`, comma-separated.
    pub mirrors: Vec<images::Mirror>,
    /// `OSCAR_INSECURE_REGISTRIES`: `host[:port]`s spoken to over plain HTTP.
    pub insecure: Vec<String>,
}

/// Images kept by default: a handful of scientific images.
const IMAGE_CACHE_LIMIT: &str = "20Gi";

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);

        let storage = match env.text("OSCAR_S3_ENDPOINT") {
            Some(endpoint) => {
                let endpoint = http_url("OSCAR_S3_ENDPOINT", endpoint)?
                    .trim_end_matches('/')
                    .to_string();
                let credentials = credentials(&env)?.ok_or_else(|| {
                    err(
                        "OSCAR_S3_ACCESS_KEY",
                        "is required with OSCAR_S3_ENDPOINT (and so is OSCAR_S3_SECRET_KEY)",
                    )
                })?;
                Storage::External {
                    endpoint,
                    credentials,
                }
            }
            None => Storage::Embedded {
                listen: env.socket_addr("OSCAR_S3_LISTEN", "127.0.0.1:9000")?,
                credentials: credentials(&env)?,
            },
        };

        let database_url = env.text("DATABASE_URL");
        if database_url
            .as_deref()
            .is_some_and(|url| domain::db::DatabaseKind::from_url(url).is_none())
        {
            return Err(err(
                "DATABASE_URL",
                "must start with postgres:// (or postgresql://), or sqlite: for a SQLite file",
            ));
        }

        let notify_arn = env.text("OSCAR_S3_NOTIFY_ARN");
        if notify_arn.is_some() && matches!(storage, Storage::Embedded { .. }) {
            return Err(err(
                "OSCAR_S3_NOTIFY_ARN",
                "applies to an external store (OSCAR_S3_ENDPOINT); the embedded store reports new objects itself",
            ));
        }
        let webhook_token = env.text("OSCAR_WEBHOOK_TOKEN").map(Secret);
        if webhook_token.as_ref().is_some_and(|t| t.0.len() < 16) {
            return Err(err(
                "OSCAR_WEBHOOK_TOKEN",
                "must be at least 16 characters long",
            ));
        }
        let metrics_token = env.text("OSCAR_METRICS_TOKEN").map(Secret);
        if metrics_token.as_ref().is_some_and(|t| t.0.len() < 16) {
            return Err(err(
                "OSCAR_METRICS_TOKEN",
                "must be at least 16 characters long",
            ));
        }
        if notify_arn.is_some() && webhook_token.is_none() {
            return Err(err(
                "OSCAR_WEBHOOK_TOKEN",
                "is required with OSCAR_S3_NOTIFY_ARN (the store's webhook authenticates with it)",
            ));
        }

        let admin_username = env.text("OSCAR_USERNAME").unwrap_or_else(|| "oscar".into());
        if admin_username.chars().any(|c| c.is_control() || c == ':') {
            return Err(err(
                "OSCAR_USERNAME",
                "must not contain ':' or control characters",
            ));
        }
        let admin_password = env.text("OSCAR_PASSWORD").map(Secret);
        if admin_password.as_ref().is_some_and(|p| p.0.len() < 8) {
            return Err(err("OSCAR_PASSWORD", "must be at least 8 characters long"));
        }

        Ok(Self {
            listen: env.socket_addr("OSCAR_LISTEN", "127.0.0.1:3000")?,
            data_dir: PathBuf::from(
                env.text("OSCAR_DATA_DIR")
                    .unwrap_or_else(|| "./data".into()),
            ),
            database_url,
            storage,
            s3_region: env
                .text("OSCAR_S3_REGION")
                .unwrap_or_else(|| "us-east-1".into()),
            admin_username,
            admin_password,
            secure_cookies: env.boolean("OSCAR_SECURE_COOKIES", false)?,
            trusted_proxies: env.networks("OSCAR_TRUSTED_PROXIES")?,
            log_format: match env.text("OSCAR_LOG_FORMAT").as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(err(
                        "OSCAR_LOG_FORMAT",
                        format!("{other:?} is not one of: text, json"),
                    ));
                }
            },
            site_root: PathBuf::from(
                env.text("LEPTOS_SITE_ROOT")
                    .unwrap_or_else(|| "target/site".into()),
            ),
            jobs: job_settings(&env)?,
            notify_arn,
            webhook_token,
            metrics_token,
            upload_limit: env.number("OSCAR_UPLOAD_LIMIT", UPLOAD_LIMIT)?,
            supervisor: env.text("OSCAR_SUPERVISOR").map(|path| vec![path]),
            oidc: oidc_settings(&env)?,
            allow_unsandboxed_jobs: env.boolean("OSCAR_ALLOW_UNSANDBOXED_JOBS", false)?,
            job_pids_limit: env.count("OSCAR_JOB_PIDS_LIMIT", 1024)?,
            job_disk_limit: env.size("OSCAR_JOB_DISK_LIMIT", "20Gi")?,
            volume_limits: volume_limits(&env)?,
            job_mounts: env
                .list("OSCAR_JOB_MOUNTS")
                .iter()
                .map(|entry| JobMount::parse(entry).map_err(|e| err("OSCAR_JOB_MOUNTS", e)))
                .collect::<Result<_, _>>()?,
            executor: executor(&env)?,
            job_s3_endpoint: env
                .text("OSCAR_JOB_S3_ENDPOINT")
                .map(|url| http_url("OSCAR_JOB_S3_ENDPOINT", url))
                .transpose()?
                .map(|url| url.trim_end_matches('/').to_string()),
            s3_public_url: env
                .text("OSCAR_S3_PUBLIC_URL")
                .map(|url| http_url("OSCAR_S3_PUBLIC_URL", url))
                .transpose()?
                .map(|url| url.trim_end_matches('/').to_string()),
        })
    }

    /// Embedded mode in `data_dir` with every listener on a free loopback port: what tests use.
    pub fn embedded_for_tests(data_dir: PathBuf) -> Self {
        let mut config = Self::from_lookup(|_| None).expect("defaults are valid");
        config.listen = ([127, 0, 0, 1], 0).into();
        config.storage = Storage::Embedded {
            listen: ([127, 0, 0, 1], 0).into(),
            credentials: None,
        };
        config.data_dir = data_dir;
        config.admin_password = Some(Secret("test-password".into()));
        config
    }
}

const UPLOAD_LIMIT: u64 = 5 * 1024 * 1024 * 1024;

/// EGI Check-In's production issuer, the default provider.
const EGI_ISSUER: &str = "https://aai.egi.eu/auth/realms/egi";
const DEFAULT_SCOPES: &str = "openid profile email eduperson_entitlement offline_access";

fn oidc_settings(env: &Env) -> Result<Option<OidcSettings>, ConfigError> {
    let Some(client_id) = env.text("OIDC_CLIENT_ID") else {
        for name in [
            "OIDC_ISSUER",
            "OIDC_CLIENT_SECRET",
            "OIDC_REDIRECT_URL",
            "OIDC_GROUPS",
        ] {
            if env.text(name).is_some() {
                return Err(err(
                    name,
                    "needs OIDC_CLIENT_ID (the platform's client at the provider)",
                ));
            }
        }
        return Ok(None);
    };
    // Compared byte for byte with the provider's `iss`: used exactly as given.
    let issuer = http_url(
        "OIDC_ISSUER",
        env.text("OIDC_ISSUER").unwrap_or_else(|| EGI_ISSUER.into()),
    )?;
    let redirect_url = env.text("OIDC_REDIRECT_URL").ok_or_else(|| {
        err(
            "OIDC_REDIRECT_URL",
            format!("is required with OIDC_CLIENT_ID: this platform's public URL followed by {}, as registered at the provider", app::web::sign_in::CALLBACK_PATH),
        )
    })?;
    let redirect_url = http_url("OIDC_REDIRECT_URL", redirect_url)?;
    let path = redirect_url
        .splitn(4, '/')
        .nth(3)
        .map(|rest| format!("/{}", rest.split(['?', '#']).next().unwrap_or_default()));
    if path.as_deref() != Some(app::web::sign_in::CALLBACK_PATH) {
        return Err(err(
            "OIDC_REDIRECT_URL",
            format!(
                "must end in {} (where this server receives the provider's answer)",
                app::web::sign_in::CALLBACK_PATH
            ),
        ));
    }
    let list = |value: String| -> Vec<String> {
        value
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let mut scopes = list(
        env.text("OIDC_SCOPES")
            .unwrap_or_else(|| DEFAULT_SCOPES.into()),
    );
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let display_name = env.text("OIDC_PROVIDER_NAME").unwrap_or_else(|| {
        if issuer.contains("/realms/egi") {
            "EGI Check-In".into()
        } else {
            issuer.split('/').nth(2).unwrap_or(&issuer).to_string()
        }
    });
    Ok(Some(OidcSettings {
        issuer,
        client_id,
        client_secret: env.text("OIDC_CLIENT_SECRET"),
        redirect_url,
        scopes,
        groups: env.text("OIDC_GROUPS").map(list).unwrap_or_default(),
        audience: env.text("OIDC_AUDIENCE"),
        display_name,
        refresh_client_id: env
            .text("OIDC_REFRESH_CLIENT_ID")
            .unwrap_or_else(|| "token-portal".into()),
    }))
}

const KUBE_VARS: &[&str] = &[
    "OSCAR_KUBE_NAMESPACE",
    "OSCAR_KUBE_NAMESPACE_PER_USER",
    "OSCAR_KUBE_PLATFORM_IMAGE",
    "OSCAR_KUBE_JOB_TTL",
    "OSCAR_KUBE_PENDING_TIMEOUT",
    "OSCAR_KUBE_EXPOSED_HOST",
    "OSCAR_KUBE_EXPOSED_GATEWAY",
    "OSCAR_KUBE_EXPOSED_INGRESS_CLASS",
    "OSCAR_KUBE_ALLOW_NODE_PORTS",
    "OSCAR_KUBE_WORKER_PORT",
    "OSCAR_KUBECONFIG",
];

/// Settings of the image executor, a mistake with another.
const IMAGE_VARS: &[&str] = &[
    "OSCAR_IMAGE_CACHE_LIMIT",
    "OSCAR_IMAGE_TAG_REFRESH",
    "OSCAR_REGISTRY_MIRRORS",
    "OSCAR_INSECURE_REGISTRIES",
];

/// Cluster settings without the cluster executor are a mistake worth naming.
fn not_for_the_cluster(env: &Env) -> Result<(), ConfigError> {
    match KUBE_VARS.iter().find(|name| env.text(name).is_some()) {
        Some(name) => Err(err(name, "applies with OSCAR_EXECUTOR=kubernetes")),
        None => Ok(()),
    }
}

fn executor(env: &Env) -> Result<ExecutorConfig, ConfigError> {
    match env.text("OSCAR_EXECUTOR").as_deref() {
        // `host`: scripts run with this machine's programs (`local`, its earlier name).
        Some("host" | "local") => {
            not_for_the_cluster(env)?;
            if let Some(name) = IMAGE_VARS.iter().find(|name| env.text(name).is_some()) {
                return Err(err(name, "applies with OSCAR_EXECUTOR=image"));
            }
            Ok(ExecutorConfig::Host)
        }
        None | Some("image") => {
            not_for_the_cluster(env)?;
            Ok(ExecutorConfig::Image(ImageSettings {
                cache_limit: env.size("OSCAR_IMAGE_CACHE_LIMIT", IMAGE_CACHE_LIMIT)?,
                tag_refresh: env.seconds("OSCAR_IMAGE_TAG_REFRESH", Duration::from_secs(300))?,
                mirrors: env
                    .list("OSCAR_REGISTRY_MIRRORS")
                    .iter()
                    .map(|entry| {
                        images::Mirror::parse(entry).map_err(|e| err("OSCAR_REGISTRY_MIRRORS", e))
                    })
                    .collect::<Result<_, _>>()?,
                insecure: env.list("OSCAR_INSECURE_REGISTRIES"),
            }))
        }
        Some("kubernetes") => {
            let namespace = env
                .text("OSCAR_KUBE_NAMESPACE")
                .unwrap_or_else(|| "oscar-svc".into());
            // Per-user namespaces append '-' and 10 characters; a namespace has at most 63.
            let valid = !namespace.is_empty()
                && namespace.len() <= 52
                && namespace
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !namespace.starts_with('-')
                && !namespace.ends_with('-');
            if !valid {
                return Err(err(
                    "OSCAR_KUBE_NAMESPACE",
                    format!(
                        "{namespace:?} is not a namespace name (lowercase letters, digits and '-', at most 52 characters)"
                    ),
                ));
            }
            let per_user = env.boolean("OSCAR_KUBE_NAMESPACE_PER_USER", false)?;
            let platform_image = env.text("OSCAR_KUBE_PLATFORM_IMAGE").ok_or_else(|| {
                err(
                    "OSCAR_KUBE_PLATFORM_IMAGE",
                    "is required with OSCAR_EXECUTOR=kubernetes: the platform's image, whose supervisor jobs run",
                )
            })?;
            let seconds = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
                let value = env.number(name, default)?;
                if value == 0 {
                    return Err(err(name, "must be greater than 0"));
                }
                Ok(Duration::from_secs(value))
            };
            Ok(ExecutorConfig::Kubernetes {
                cluster: ClusterSettings {
                    namespace,
                    namespacing: if per_user {
                        Namespacing::PerUser
                    } else {
                        Namespacing::Shared
                    },
                    platform_image,
                    job_ttl: seconds("OSCAR_KUBE_JOB_TTL", 600)?,
                    pending_timeout: seconds("OSCAR_KUBE_PENDING_TIMEOUT", 300)?,
                    exposed_routes: exposed_routes(env)?,
                    allow_node_ports: env.boolean("OSCAR_KUBE_ALLOW_NODE_PORTS", false)?,
                    storage_class: env.text("OSCAR_KUBE_STORAGE_CLASS"),
                    volume_limits: volume_limits(env)?,
                    rclone_image: env.text("OSCAR_KUBE_RCLONE_IMAGE"),
                    worker_port: match env.number("OSCAR_KUBE_WORKER_PORT", 8080)? {
                        port @ 1..=65535 => port as u16,
                        _ => {
                            return Err(err(
                                "OSCAR_KUBE_WORKER_PORT",
                                "must be a port, 1 to 65535",
                            ));
                        }
                    },
                },
                kubeconfig: env.text("OSCAR_KUBECONFIG").map(PathBuf::from),
            })
        }
        Some(other) => Err(err(
            "OSCAR_EXECUTOR",
            format!("{other:?} is not one of: image, host, kubernetes"),
        )),
    }
}

fn volume_limits(env: &Env) -> Result<domain::volumes::Limits, ConfigError> {
    Ok(domain::volumes::Limits {
        per_user: env.number("OSCAR_VOLUMES_PER_USER", 5)?,
        max_bytes: env.size("OSCAR_VOLUME_MAX_SIZE", "5Gi")?,
    })
}

/// Routes straight to exposed services: a host of their own, and a Gateway or an Ingress
/// class to route with; none of these, the platform's proxy serves them.
fn exposed_routes(env: &Env) -> Result<Option<ExposedRoutes>, ConfigError> {
    let gateway = env.text("OSCAR_KUBE_EXPOSED_GATEWAY");
    let class = env.text("OSCAR_KUBE_EXPOSED_INGRESS_CLASS");
    let Some(host) = env.text("OSCAR_KUBE_EXPOSED_HOST") else {
        return match (gateway, class) {
            (None, None) => Ok(None),
            (Some(_), _) => Err(err(
                "OSCAR_KUBE_EXPOSED_GATEWAY",
                "needs OSCAR_KUBE_EXPOSED_HOST, the host apps are served on",
            )),
            (None, Some(_)) => Err(err(
                "OSCAR_KUBE_EXPOSED_INGRESS_CLASS",
                "needs OSCAR_KUBE_EXPOSED_HOST, the host apps are served on",
            )),
        };
    };
    let valid_host = host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if !valid_host {
        return Err(err(
            "OSCAR_KUBE_EXPOSED_HOST",
            format!("{host:?} is not a host name (lowercase, without scheme or port)"),
        ));
    }
    let via = match (gateway, class) {
        (Some(gateway), None) => {
            let Some((namespace, name)) = gateway
                .split_once('/')
                .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
            else {
                return Err(err(
                    "OSCAR_KUBE_EXPOSED_GATEWAY",
                    format!("{gateway:?} is not <namespace>/<name>"),
                ));
            };
            RouteKind::Gateway {
                namespace: namespace.into(),
                name: name.into(),
            }
        }
        (None, Some(class)) => RouteKind::Ingress { class },
        (Some(_), Some(_)) => {
            return Err(err(
                "OSCAR_KUBE_EXPOSED_INGRESS_CLASS",
                "set it or OSCAR_KUBE_EXPOSED_GATEWAY, not both",
            ));
        }
        (None, None) => {
            return Err(err(
                "OSCAR_KUBE_EXPOSED_HOST",
                "needs OSCAR_KUBE_EXPOSED_GATEWAY (<namespace>/<name>) or OSCAR_KUBE_EXPOSED_INGRESS_CLASS",
            ));
        }
    };
    Ok(Some(ExposedRoutes { host, via }))
}

fn job_settings(env: &Env) -> Result<JobSettings, ConfigError> {
    let defaults = JobSettings::default();
    let reconcile = env.seconds(
        "OSCAR_RECONCILE_INTERVAL",
        defaults.reconcile_every.unwrap_or_default(),
    )?;
    let poll = env.seconds(
        "OSCAR_POLL_INTERVAL",
        defaults.poll_every.unwrap_or_default(),
    )?;
    let settings = JobSettings {
        max_concurrent_per_service: env.count(
            "OSCAR_MAX_CONCURRENT_JOBS",
            defaults.max_concurrent_per_service,
        )?,
        max_attempts: env.count("OSCAR_JOB_MAX_ATTEMPTS", defaults.max_attempts)?,
        lease: env.seconds("OSCAR_JOB_LEASE", defaults.lease)?,
        timeout: env.seconds("OSCAR_JOB_TIMEOUT", defaults.timeout)?,
        sync_timeout: env.seconds("OSCAR_RUN_TIMEOUT", defaults.sync_timeout)?,
        log_limit: env.number("OSCAR_JOB_LOG_LIMIT", defaults.log_limit)?,
        payload_limit: env.number("OSCAR_MAX_PAYLOAD_BYTES", defaults.payload_limit)?,
        // Set in the data directory when the server starts.
        spool: defaults.spool,
        retention: Duration::from_secs(
            env.number(
                "OSCAR_JOB_RETENTION_DAYS",
                defaults.retention.as_secs() / 86_400,
            )? * 86_400,
        ),
        // 0 turns the reconciler off.
        reconcile_every: (!reconcile.is_zero()).then_some(reconcile),
        poll_every: (!poll.is_zero()).then_some(poll),
        private_peers: env.boolean("OSCAR_FEDERATION_PRIVATE_PEERS", defaults.private_peers)?,
    };
    for (name, value) in [
        ("OSCAR_JOB_LEASE", settings.lease),
        ("OSCAR_JOB_TIMEOUT", settings.timeout),
        ("OSCAR_RUN_TIMEOUT", settings.sync_timeout),
        ("OSCAR_JOB_RETENTION_DAYS", settings.retention),
    ] {
        if value.is_zero() {
            return Err(err(name, "must be greater than 0"));
        }
    }
    if settings.payload_limit == 0 {
        return Err(err("OSCAR_MAX_PAYLOAD_BYTES", "must be greater than 0"));
    }
    Ok(settings)
}

/// `value` when it is an http:// or https:// URL.
fn http_url(var: &'static str, value: String) -> Result<String, ConfigError> {
    if value.starts_with("https://") || value.starts_with("http://") {
        Ok(value)
    } else {
        Err(err(
            var,
            format!("{value:?} is not an http:// or https:// URL"),
        ))
    }
}

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// The environment as the configuration reads it. Each typed read names its variable once, and
/// its error names it too. Unset and empty both mean "use the default".
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn text(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// A whole number.
    fn number(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        let Some(value) = self.text(name) else {
            return Ok(default);
        };
        value.trim().parse().map_err(|_| {
            err(
                name,
                format!("{value:?} is not a whole number (default {default})"),
            )
        })
    }

    /// A size in bytes: a number or a Kubernetes quantity (`512Mi`, `20Gi`).
    fn size(&self, name: &'static str, default: &str) -> Result<u64, ConfigError> {
        let value = self.text(name);
        let value = value.as_deref().unwrap_or(default);
        model::service::quantity::parse(value)
            .ok()
            .filter(|bytes| *bytes >= 1.0)
            .map(|bytes| bytes as u64)
            .ok_or_else(|| {
                err(
                    name,
                    format!("{value:?} is not a size (bytes, or a quantity such as 20Gi)"),
                )
            })
    }

    /// A count from 1 to `u32::MAX`.
    fn count(&self, name: &'static str, default: u32) -> Result<u32, ConfigError> {
        let value = self.number(name, default.into())?;
        u32::try_from(value)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| err(name, format!("{value} is out of range (1 to {})", u32::MAX)))
    }

    /// Comma-separated entries, trimmed, empty ones dropped.
    fn list(&self, name: &str) -> Vec<String> {
        let value = self.text(name).unwrap_or_default();
        value
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(String::from)
            .collect()
    }

    /// A whole number of seconds.
    fn seconds(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.number(name, default.as_secs())?))
    }

    fn socket_addr(&self, name: &'static str, default: &str) -> Result<SocketAddr, ConfigError> {
        let value = self.text(name).unwrap_or_else(|| default.to_string());
        value.trim().parse().map_err(|_| {
            err(
                name,
                format!("{value:?} is not a socket address (expected host:port, e.g. {default})"),
            )
        })
    }

    fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.text(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => Err(err(
                name,
                format!("{other:?} is not a boolean (true or false)"),
            )),
        }
    }

    /// Comma-separated addresses (one host each) or networks in CIDR notation.
    fn networks(&self, name: &'static str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        let value = self.text(name);
        let items = value.iter().flat_map(|v| v.split(',')).map(str::trim);
        items
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<ipnet::IpNet>()
                    .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        err(
                            name,
                            format!("{item:?} is neither an IP address nor a network (10.0.0.0/8)"),
                        )
                    })
            })
            .collect()
    }
}

fn credentials(env: &Env) -> Result<Option<S3Credentials>, ConfigError> {
    match (
        env.text("OSCAR_S3_ACCESS_KEY"),
        env.text("OSCAR_S3_SECRET_KEY"),
    ) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(err(
            "OSCAR_S3_SECRET_KEY",
            "is required when OSCAR_S3_ACCESS_KEY is set",
        )),
        (None, Some(_)) => Err(err(
            "OSCAR_S3_ACCESS_KEY",
            "is required when OSCAR_S3_SECRET_KEY is set",
        )),
        (Some(access_key), Some(secret_key)) => {
            // MinIO's own limits, so a key that works here also works there.
            if access_key.len() < 3 {
                return Err(err(
                    "OSCAR_S3_ACCESS_KEY",
                    "must be at least 3 characters long",
                ));
            }
            if secret_key.len() < 8 {
                return Err(err(
                    "OSCAR_S3_SECRET_KEY",
                    "must be at least 8 characters long",
                ));
            }
            Ok(Some(S3Credentials {
                access_key,
                secret_key: Secret(secret_key),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn jobs_run_in_their_image_by_default_with_a_bounded_cache() {
        let ExecutorConfig::Image(settings) = parse(&[]).unwrap().executor else {
            panic!("the image executor is the default");
        };
        assert_eq!(settings.cache_limit, 20 << 30);
        assert_eq!(settings.tag_refresh, Duration::from_secs(300));
        let ExecutorConfig::Image(settings) = parse(&[
            ("OSCAR_EXECUTOR", "image"),
            ("OSCAR_IMAGE_CACHE_LIMIT", "512Mi"),
            (
                "OSCAR_REGISTRY_MIRRORS",
                "docker.io=http://127.0.0.1:5000, ghcr.io=https://m.example",
            ),
            ("OSCAR_INSECURE_REGISTRIES", "harbor.lan:80"),
        ])
        .unwrap()
        .executor
        else {
            panic!("image");
        };
        assert_eq!(settings.cache_limit, 512 << 20);
        assert_eq!(parse(&[]).unwrap().job_disk_limit, 20 << 30);
        assert_eq!(
            parse(&[("OSCAR_JOB_DISK_LIMIT", "lots")]).unwrap_err().var,
            "OSCAR_JOB_DISK_LIMIT"
        );
        assert_eq!(settings.mirrors.len(), 2);
        assert_eq!(settings.insecure, ["harbor.lan:80"]);
        for (bad, var) in [
            (
                ("OSCAR_IMAGE_CACHE_LIMIT", "lots"),
                "OSCAR_IMAGE_CACHE_LIMIT",
            ),
            (
                ("OSCAR_REGISTRY_MIRRORS", "docker.io=mirror"),
                "OSCAR_REGISTRY_MIRRORS",
            ),
            (
                ("OSCAR_IMAGE_TAG_REFRESH", "soon"),
                "OSCAR_IMAGE_TAG_REFRESH",
            ),
        ] {
            assert_eq!(parse(&[bad]).unwrap_err().var, var);
        }
        let host = ("OSCAR_EXECUTOR", "host");
        assert_eq!(parse(&[host]).unwrap().executor, ExecutorConfig::Host);
        assert_eq!(
            parse(&[host, ("OSCAR_IMAGE_CACHE_LIMIT", "1Gi")])
                .unwrap_err()
                .var,
            "OSCAR_IMAGE_CACHE_LIMIT"
        );
    }

    #[test]
    fn exposed_routes_need_a_host_and_one_way_to_route() {
        let kube = ("OSCAR_EXECUTOR", "kubernetes");
        let image = ("OSCAR_KUBE_PLATFORM_IMAGE", "ghcr.io/example/oscar:1.0");
        let host = ("OSCAR_KUBE_EXPOSED_HOST", "apps.example.org");
        let gateway = ("OSCAR_KUBE_EXPOSED_GATEWAY", "gateway-system/gateway");
        let class = ("OSCAR_KUBE_EXPOSED_INGRESS_CLASS", "nginx");
        let routes = |vars: &[(&str, &str)]| match parse(vars).unwrap().executor {
            ExecutorConfig::Kubernetes { cluster, .. } => cluster.exposed_routes,
            _ => panic!("kubernetes"),
        };
        assert_eq!(routes(&[kube, image]), None);
        assert_eq!(
            routes(&[kube, image, host, gateway]),
            Some(ExposedRoutes {
                host: "apps.example.org".into(),
                via: RouteKind::Gateway {
                    namespace: "gateway-system".into(),
                    name: "gateway".into()
                }
            })
        );
        assert_eq!(
            routes(&[kube, image, host, class]).unwrap().via,
            RouteKind::Ingress {
                class: "nginx".into()
            }
        );
        for (vars, var) in [
            (vec![gateway], "OSCAR_KUBE_EXPOSED_GATEWAY"),
            (vec![class], "OSCAR_KUBE_EXPOSED_INGRESS_CLASS"),
            (vec![host], "OSCAR_KUBE_EXPOSED_HOST"),
            (
                vec![host, gateway, class],
                "OSCAR_KUBE_EXPOSED_INGRESS_CLASS",
            ),
            (
                vec![host, ("OSCAR_KUBE_EXPOSED_GATEWAY", "gateway")],
                "OSCAR_KUBE_EXPOSED_GATEWAY",
            ),
            (
                vec![
                    ("OSCAR_KUBE_EXPOSED_HOST", "https://apps.example.org"),
                    class,
                ],
                "OSCAR_KUBE_EXPOSED_HOST",
            ),
        ] {
            let all: Vec<_> = [kube, image].into_iter().chain(vars).collect();
            assert_eq!(parse(&all).unwrap_err().var, var);
        }
        // A cluster setting without the cluster executor is named.
        assert_eq!(parse(&[host]).unwrap_err().var, "OSCAR_KUBE_EXPOSED_HOST");
    }

    #[test]
    fn the_kubernetes_executor_needs_the_platform_image_and_names_bad_values() {
        let kube = ("OSCAR_EXECUTOR", "kubernetes");
        let image = ("OSCAR_KUBE_PLATFORM_IMAGE", "ghcr.io/example/oscar:1.0");
        assert_eq!(parse(&[kube]).unwrap_err().var, "OSCAR_KUBE_PLATFORM_IMAGE");
        let ExecutorConfig::Kubernetes {
            cluster,
            kubeconfig,
        } = parse(&[kube, image]).unwrap().executor
        else {
            panic!("kubernetes");
        };
        assert_eq!(cluster.namespace, "oscar-svc");
        assert_eq!(cluster.namespacing, Namespacing::Shared);
        assert_eq!(cluster.job_ttl, Duration::from_secs(600));
        assert_eq!(cluster.pending_timeout, Duration::from_secs(300));
        assert_eq!(cluster.worker_port, 8080);
        assert_eq!(kubeconfig, None);
        let per_user = parse(&[kube, image, ("OSCAR_KUBE_NAMESPACE_PER_USER", "true")]).unwrap();
        assert!(matches!(
            per_user.executor,
            ExecutorConfig::Kubernetes { cluster, .. } if cluster.namespacing == Namespacing::PerUser
        ));
        for (bad, var) in [
            (
                ("OSCAR_KUBE_NAMESPACE", "Oscar_Svc"),
                "OSCAR_KUBE_NAMESPACE",
            ),
            (
                ("OSCAR_KUBE_PENDING_TIMEOUT", "0"),
                "OSCAR_KUBE_PENDING_TIMEOUT",
            ),
            (("OSCAR_KUBE_JOB_TTL", "soon"), "OSCAR_KUBE_JOB_TTL"),
            (("OSCAR_KUBE_WORKER_PORT", "0"), "OSCAR_KUBE_WORKER_PORT"),
            (
                ("OSCAR_KUBE_WORKER_PORT", "70000"),
                "OSCAR_KUBE_WORKER_PORT",
            ),
        ] {
            assert_eq!(parse(&[kube, image, bad]).unwrap_err().var, var);
        }
        assert_eq!(
            parse(&[("OSCAR_EXECUTOR", "docker")]).unwrap_err().var,
            "OSCAR_EXECUTOR"
        );
        // Cluster settings without the cluster executor are a mistake worth naming.
        assert_eq!(
            parse(&[image]).unwrap_err().var,
            "OSCAR_KUBE_PLATFORM_IMAGE"
        );
        assert_eq!(
            parse(&[("OSCAR_JOB_S3_ENDPOINT", "minio:9000")])
                .unwrap_err()
                .var,
            "OSCAR_JOB_S3_ENDPOINT"
        );
    }

    #[test]
    fn oidc_defaults_to_egi_check_in_and_names_what_is_missing() {
        assert_eq!(parse(&[]).unwrap().oidc, None);
        let redirect = ("OIDC_REDIRECT_URL", "https://oscar.example/auth/callback");
        let oidc = parse(&[
            ("OIDC_CLIENT_ID", "oscar"),
            ("OIDC_CLIENT_SECRET", "very-secret"),
            redirect,
            ("OIDC_GROUPS", "vo.example.eu, vo.other.eu"),
        ])
        .unwrap()
        .oidc
        .unwrap();
        assert_eq!(oidc.issuer, "https://aai.egi.eu/auth/realms/egi");
        assert_eq!(oidc.display_name, "EGI Check-In");
        assert_eq!(oidc.refresh_client_id, "token-portal");
        assert_eq!(
            oidc.scopes,
            [
                "openid",
                "profile",
                "email",
                "eduperson_entitlement",
                "offline_access"
            ]
        );
        assert_eq!(oidc.groups, ["vo.example.eu", "vo.other.eu"]);
        assert!(!format!("{oidc:?}").contains("very-secret"));

        let var = |vars: &[(&str, &str)]| parse(vars).unwrap_err().var;
        assert_eq!(var(&[("OIDC_ISSUER", "https://idp")]), "OIDC_ISSUER");
        assert_eq!(var(&[("OIDC_CLIENT_ID", "oscar")]), "OIDC_REDIRECT_URL");
        assert_eq!(
            var(&[
                ("OIDC_CLIENT_ID", "oscar"),
                ("OIDC_REDIRECT_URL", "https://oscar.example/cb")
            ]),
            "OIDC_REDIRECT_URL"
        );
        assert_eq!(
            var(&[
                ("OIDC_CLIENT_ID", "oscar"),
                redirect,
                ("OIDC_ISSUER", "aai.egi.eu")
            ]),
            "OIDC_ISSUER"
        );
        let scopes = parse(&[
            ("OIDC_CLIENT_ID", "oscar"),
            redirect,
            ("OIDC_SCOPES", "profile email"),
        ])
        .unwrap()
        .oidc
        .unwrap()
        .scopes;
        assert_eq!(scopes, ["openid", "profile", "email"]);
    }

    #[test]
    fn defaults_are_embedded_mode() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.database_url, None);
        assert_eq!(
            config.storage,
            Storage::Embedded {
                listen: "127.0.0.1:9000".parse().unwrap(),
                credentials: None
            }
        );
        assert_eq!(config.admin_username, "oscar");
        assert_eq!(config.admin_password, None);
        assert!(!config.secure_cookies);
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn job_settings_have_defaults_and_name_bad_values() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.jobs.max_concurrent_per_service, 10);
        assert_eq!(config.jobs.sync_timeout, Duration::from_secs(300));
        assert_eq!(config.jobs.retention, Duration::from_secs(30 * 86_400));
        assert!(config.jobs.reconcile_every.is_some());
        assert_eq!(config.jobs.poll_every, Some(Duration::from_secs(30)));
        let config = parse(&[
            ("OSCAR_RECONCILE_INTERVAL", "0"),
            ("OSCAR_POLL_INTERVAL", "0"),
            ("OSCAR_MAX_CONCURRENT_JOBS", "3"),
        ])
        .unwrap();
        assert_eq!(config.jobs.reconcile_every, None);
        assert_eq!(config.jobs.poll_every, None);
        assert_eq!(config.jobs.max_concurrent_per_service, 3);
        let e = parse(&[("OSCAR_JOB_TIMEOUT", "ten")]).unwrap_err();
        assert_eq!(e.var, "OSCAR_JOB_TIMEOUT");
        assert!(e.message.contains("\"ten\" is not a whole number"), "{e}");
        assert_eq!(
            parse(&[("OSCAR_MAX_CONCURRENT_JOBS", "0")])
                .unwrap_err()
                .var,
            "OSCAR_MAX_CONCURRENT_JOBS"
        );
        assert_eq!(
            parse(&[("OSCAR_RUN_TIMEOUT", "0")]).unwrap_err().var,
            "OSCAR_RUN_TIMEOUT"
        );
    }

    #[test]
    fn store_notifications_need_an_external_store_and_a_token() {
        let external = [
            ("OSCAR_S3_ENDPOINT", "https://minio.example.org"),
            ("OSCAR_S3_ACCESS_KEY", "root"),
            ("OSCAR_S3_SECRET_KEY", "rootpassword"),
            ("OSCAR_S3_NOTIFY_ARN", "arn:minio:sqs::oscar:webhook"),
        ];
        assert_eq!(parse(&external).unwrap_err().var, "OSCAR_WEBHOOK_TOKEN");
        let mut with_token = external.to_vec();
        with_token.push(("OSCAR_WEBHOOK_TOKEN", "a-long-enough-token"));
        let config = parse(&with_token).unwrap();
        assert_eq!(
            config.notify_arn.as_deref(),
            Some("arn:minio:sqs::oscar:webhook")
        );
        let embedded = parse(&[
            ("OSCAR_S3_NOTIFY_ARN", "arn:x"),
            ("OSCAR_WEBHOOK_TOKEN", "a-long-enough-token"),
        ]);
        assert_eq!(embedded.unwrap_err().var, "OSCAR_S3_NOTIFY_ARN");
        assert_eq!(
            parse(&[("OSCAR_WEBHOOK_TOKEN", "short")]).unwrap_err().var,
            "OSCAR_WEBHOOK_TOKEN"
        );
    }

    #[test]
    fn a_bad_s3_listen_address_names_the_variable() {
        let e = parse(&[("OSCAR_S3_LISTEN", "localhost")]).unwrap_err();
        assert_eq!(e.var, "OSCAR_S3_LISTEN");
        assert!(
            e.to_string()
                .contains("\"localhost\" is not a socket address"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_listen_address_names_the_variable() {
        assert_eq!(
            parse(&[("OSCAR_LISTEN", "3000")]).unwrap_err().var,
            "OSCAR_LISTEN"
        );
    }

    #[test]
    fn database_url_must_be_postgres_or_sqlite() {
        assert_eq!(
            parse(&[("DATABASE_URL", "mysql://x")]).unwrap_err().var,
            "DATABASE_URL"
        );
        assert!(parse(&[("DATABASE_URL", "postgres://u@h/db")]).is_ok());
        assert!(parse(&[("DATABASE_URL", "sqlite:///tmp/x.db")]).is_ok());
    }

    #[test]
    fn external_storage_needs_a_url_and_both_keys() {
        let e = parse(&[("OSCAR_S3_ENDPOINT", "minio:9000")]).unwrap_err();
        assert_eq!(e.var, "OSCAR_S3_ENDPOINT");
        let e = parse(&[("OSCAR_S3_ENDPOINT", "http://minio:9000")]).unwrap_err();
        assert_eq!(e.var, "OSCAR_S3_ACCESS_KEY");
        let e = parse(&[
            ("OSCAR_S3_ENDPOINT", "http://minio:9000"),
            ("OSCAR_S3_ACCESS_KEY", "minio"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "OSCAR_S3_SECRET_KEY");
        let config = parse(&[
            ("OSCAR_S3_ENDPOINT", "https://minio:9000/"),
            ("OSCAR_S3_ACCESS_KEY", "minio"),
            ("OSCAR_S3_SECRET_KEY", "minio123"),
        ])
        .unwrap();
        match config.storage {
            Storage::External {
                endpoint,
                credentials,
            } => {
                assert_eq!(endpoint, "https://minio:9000");
                assert_eq!(credentials.access_key, "minio");
            }
            other => panic!("expected external storage, got {other:?}"),
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            parse(&[("OSCAR_PASSWORD", "short")]).unwrap_err().var,
            "OSCAR_PASSWORD"
        );
        let e = parse(&[
            ("OSCAR_S3_ACCESS_KEY", "ak1"),
            ("OSCAR_S3_SECRET_KEY", "short"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "OSCAR_S3_SECRET_KEY");
    }

    #[test]
    fn enumerations_reject_unknown_values() {
        assert_eq!(
            parse(&[("OSCAR_LOG_FORMAT", "xml")]).unwrap_err().var,
            "OSCAR_LOG_FORMAT"
        );
        assert_eq!(
            parse(&[("OSCAR_SECURE_COOKIES", "maybe")]).unwrap_err().var,
            "OSCAR_SECURE_COOKIES"
        );
        assert!(
            parse(&[("OSCAR_SECURE_COOKIES", "TRUE")])
                .unwrap()
                .secure_cookies
        );
        assert_eq!(
            parse(&[("OSCAR_TRUSTED_PROXIES", "10.0.0.0/8,nope")])
                .unwrap_err()
                .var,
            "OSCAR_TRUSTED_PROXIES"
        );
        let proxies = parse(&[("OSCAR_TRUSTED_PROXIES", " 10.0.0.0/8, 192.0.2.7 ,::1")])
            .unwrap()
            .trusted_proxies;
        let proxies: Vec<String> = proxies.iter().map(ToString::to_string).collect();
        assert_eq!(proxies, ["10.0.0.0/8", "192.0.2.7/32", "::1/128"]);
    }

    #[test]
    fn empty_values_mean_the_default() {
        assert_eq!(
            parse(&[("OSCAR_USERNAME", "")]).unwrap().admin_username,
            "oscar"
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = parse(&[
            ("OSCAR_S3_ACCESS_KEY", "akey"),
            ("OSCAR_S3_SECRET_KEY", "very-secret"),
            ("OSCAR_PASSWORD", "admin-secret"),
        ])
        .unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("very-secret") && !shown.contains("admin-secret"),
            "{shown}"
        );
    }
}
