//! Every Kubernetes object the platform creates, as pure functions of (service, job,
//! settings): no I/O, so each is unit-tested and its YAML validated against the Kubernetes
//! schemas (`make test` runs `kubernetes-validate --strict` on what the tests write).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvFromSource, EnvVar, KeyToPath,
    LocalObjectReference, Namespace, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, Secret, SecretEnvSource, SecretVolumeSource,
    SecurityContext, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};

use super::{ClusterSettings, Namespacing, SUPERVISOR_IN_IMAGE};
use crate::access::ADMIN_OWNER;
use crate::jobs::executor::Execution;
use model::service::Service;
use model::service::validate::is_reserved_key;

pub use model::service::{JOB_LABEL, OWNER_ANNOTATION, SERVICE_LABEL};
/// Label on a managed volume's claim: the volume's name.
pub const VOLUME_LABEL: &str = "oscar.grycap.io/volume";
/// Label on everything this platform manages (its watches select on it).
pub const MANAGED_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "oscar";
/// Name of the container running the user's image (OSCAR's).
pub const JOB_CONTAINER: &str = "oscar-container";
/// Where the supervisor writes its report: Kubernetes returns it in the pod's status.
pub const REPORT_PATH: &str = "/dev/termination-log";
/// What Kubernetes keeps of a termination message.
pub const REPORT_LIMIT: usize = 4096;

/// The jobs' NetworkPolicy, as `deploy/kubernetes` ships it in the shared namespace.
pub const JOBS_POLICY: &str = "oscar-jobs";
/// The exposed services' pods' NetworkPolicy, shipped beside it.
pub const EXPOSED_POLICY: &str = "oscar-exposed";
/// The warm workers' pods' NetworkPolicy, shipped beside them.
pub const WORKERS_POLICY: &str = "oscar-workers";
/// The policy letting the pods of instances with a mount reach the store, shipped beside them.
pub const MOUNTS_POLICY: &str = "oscar-mounts";
/// The policies each user's namespace gets a copy of.
pub const POLICIES: [&str; 4] = [JOBS_POLICY, EXPOSED_POLICY, WORKERS_POLICY, MOUNTS_POLICY];

/// Time the supervisor gets beyond the script's limit to upload outputs and report.
const GRACE_SECONDS: i64 = 60;
pub(super) const BIN_DIR: &str = "/oscar/bin";
const CONFIG_DIR: &str = "/oscar/config";
const PROVIDERS_DIR: &str = "/oscar/providers";

/// The namespace of a service's jobs and Secrets.
pub fn namespace_of(settings: &ClusterSettings, owner: &str) -> String {
    match settings.namespacing {
        Namespacing::PerUser if owner != ADMIN_OWNER => {
            // Ids hold characters namespaces cannot ('@', '.', uppercase): a digest is safe.
            format!("{}-{}", settings.namespace, owner_digest(owner))
        }
        _ => settings.namespace.clone(),
    }
}

/// A short digest of an owner's id, for names that cannot hold the id itself.
fn owner_digest(owner: &str) -> String {
    hex::encode(Sha256::digest(owner.as_bytes()))[..10].to_string()
}

/// The pod volume of a managed volume's claim, and its read-write mount at `mount_path`.
pub(super) fn claim_volume(claim: &str, mount_path: &str) -> (Volume, VolumeMount) {
    let volume = Volume {
        name: "oscar-volume".into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.to_string(),
            read_only: Some(false),
        }),
        ..Default::default()
    };
    (volume, mount("oscar-volume", mount_path, false))
}

/// The PersistentVolumeClaim of `owner`'s volume `name`: the volume's name in the owner's
/// own namespace, with a digest of the owner where users share one.
pub fn claim_name(settings: &ClusterSettings, owner: &str, name: &str) -> String {
    match settings.namespacing {
        Namespacing::Shared if owner != ADMIN_OWNER => format!("{name}-{}", owner_digest(owner)),
        _ => name.to_string(),
    }
}

/// A managed volume's claim: ReadWriteMany, since jobs of its services run at once on any
/// node, of the operator's StorageClass.
pub fn volume_claim(
    settings: &ClusterSettings,
    owner: &str,
    name: &str,
    bytes: u64,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(claim_name(settings, owner, name)),
            namespace: Some(namespace_of(settings, owner)),
            labels: Some(managed([(VOLUME_LABEL, name)])),
            annotations: Some(BTreeMap::from([(
                OWNER_ANNOTATION.to_string(),
                owner.to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteMany".into()]),
            storage_class_name: settings.storage_class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(bytes.to_string()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Pod Security levels of the jobs' namespaces, as `deploy/kubernetes/base` sets them on
/// the shared one: users' images may run as root (baseline enforced), the restricted level's
/// violations are warned about. With mounts on, their rclone sidecars are privileged.
fn pod_security(settings: &ClusterSettings) -> [(&'static str, &'static str); 2] {
    let enforced = match settings.rclone_image {
        Some(_) => "privileged",
        None => "baseline",
    };
    [
        ("pod-security.kubernetes.io/enforce", enforced),
        ("pod-security.kubernetes.io/warn", "restricted"),
    ]
}

/// A user's namespace, labelled as the platform's, with the shared namespace's Pod Security.
pub fn namespace(settings: &ClusterSettings, name: &str, owner: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(managed(pod_security(settings))),
            annotations: Some(BTreeMap::from([(
                OWNER_ANNOTATION.to_string(),
                owner.to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A NetworkPolicy of the shared namespace for a user's namespace, so the operator's one
/// policy confines every user's pods alike.
pub fn policy_in(shared: &NetworkPolicy, namespace: &str) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ObjectMeta {
            name: shared.metadata.name.clone(),
            namespace: Some(namespace.to_string()),
            labels: Some(managed([])),
            ..Default::default()
        },
        spec: shared.spec.clone(),
    }
}

/// A Secret of a service: `<name>-env` with its `environment.secrets`, read by its jobs
/// through `envFrom`; `<name>-mount` with its instances' mount remote. As `data`: a
/// server-side apply never removes keys dropped from `stringData`, so a secret removed from
/// the service would stay.
pub fn service_secret(
    service: &Service,
    name: &str,
    namespace: &str,
    secrets: &[(String, String)],
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(managed([(SERVICE_LABEL, service.name.as_str())])),
            ..Default::default()
        },
        data: Some(
            secrets
                .iter()
                .map(|(k, v)| (k.clone(), k8s_openapi::ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// Whether a service of `owner` may name this Secret in `image_pull_secrets`: the admin's
/// services any, a user's only one an admin marked as theirs with [`OWNER_ANNOTATION`]
/// (registry credentials are someone's: naming them must not be enough to use them).
pub fn may_pull_with(secret: &ObjectMeta, owner: &str) -> bool {
    owner == ADMIN_OWNER
        || secret
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(OWNER_ANNOTATION))
            .is_some_and(|marked| marked == owner)
}

pub fn service_secret_name(service: &str) -> String {
    format!("{service}-env")
}

/// The Secret a job's files come from: its configuration, script, event and store keys.
/// Created after the Job and owned by it, so it goes when the Job does.
pub fn job_secret(
    execution: &Execution,
    event: &str,
    namespace: &str,
    service: &str,
    job_uid: &str,
) -> Secret {
    let (access_key, secret_key) = &execution.store_keys;
    let config = serde_norway::to_string(&execution.config).unwrap_or_default();
    Secret {
        metadata: ObjectMeta {
            name: Some(execution.job.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(managed([
                (SERVICE_LABEL, service),
                (JOB_LABEL, execution.job.as_str()),
            ])),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name: execution.job.clone(),
                uid: job_uid.to_string(),
                controller: Some(false),
                block_owner_deletion: Some(false),
            }]),
            ..Default::default()
        },
        string_data: Some(
            [
                ("function_config.yaml".to_string(), config),
                ("script.sh".to_string(), execution.script.clone()),
                ("event".to_string(), event.to_string()),
                ("accessKey".to_string(), access_key.clone()),
                ("secretKey".to_string(), secret_key.clone()),
            ]
            .into_iter()
            .chain(
                super::mount::remote_of(execution)
                    .map(|remote| super::mount::secret_entries(&remote))
                    .unwrap_or_default(),
            )
            .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// The Job running one execution of a service in its image.
pub fn job(
    service: &Service,
    execution: &Execution,
    settings: &ClusterSettings,
    namespace: &str,
) -> Job {
    let mut labels = services_own(&service.labels);
    labels.extend(managed([
        (SERVICE_LABEL, service.name.as_str()),
        (JOB_LABEL, execution.job.as_str()),
    ]));
    let mut annotations = services_own(&service.annotations);
    annotations.insert(OWNER_ANNOTATION.into(), service.owner.clone());
    let metadata = ObjectMeta {
        labels: Some(labels),
        annotations: Some(annotations),
        ..Default::default()
    };
    let mut env: Vec<EnvVar> = execution
        .env
        .iter()
        .map(|(name, value)| env_var(name, value))
        .collect();
    env.extend([
        env_var("OSCAR_CONFIG_DIR", CONFIG_DIR),
        env_var("OSCAR_PROVIDERS_DIR", PROVIDERS_DIR),
        env_var("OSCAR_EVENT_FILE", &format!("{CONFIG_DIR}/event")),
        env_var("OSCAR_RESULT_FILE", REPORT_PATH),
        env_var("OSCAR_RESULT_LIMIT", &REPORT_LIMIT.to_string()),
        env_var(
            "OSCAR_SCRIPT_TIMEOUT",
            &execution.timeout.as_secs().max(1).to_string(),
        ),
    ]);
    if execution.sync {
        // The pod's files are gone when it ends; its log can still be read.
        env.push(env_var("OSCAR_RESPONSE_IN_LOG", "1"));
    }
    let files = |items: &[(&str, &str)]| {
        items
            .iter()
            .map(|(key, path)| KeyToPath {
                key: key.to_string(),
                path: path.to_string(),
                mode: None,
            })
            .collect::<Vec<_>>()
    };
    let job_files = |name: &str, items| Volume {
        name: name.to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(execution.job.clone()),
            items: Some(items),
            // Readable by whatever user the image runs as; the pod holds nothing else.
            default_mode: Some(0o444),
            optional: Some(false),
        }),
        ..Default::default()
    };
    let mut volume_mounts = vec![
        mount("oscar-bin", BIN_DIR, true),
        mount("oscar-config", CONFIG_DIR, true),
        mount("oscar-providers", PROVIDERS_DIR, true),
    ];
    let mut volumes = vec![
        bin_volume(),
        job_files(
            "oscar-config",
            files(&[
                ("function_config.yaml", "function_config.yaml"),
                ("script.sh", "script.sh"),
                ("event", "event"),
            ]),
        ),
        job_files(
            "oscar-providers",
            files(&[
                ("accessKey", "minio.default/accessKey"),
                ("secretKey", "minio.default/secretKey"),
            ]),
        ),
    ];
    if let Some(volume) = &execution.volume {
        let claim = claim_name(settings, &service.owner, &volume.name);
        let (volume, mounted) = claim_volume(&claim, &volume.mount_path);
        volumes.push(volume);
        volume_mounts.push(mounted);
    }
    let mut pod = PodSpec {
        restart_policy: Some("Never".into()),
        init_containers: Some(vec![supervisor_init(settings)]),
        containers: vec![Container {
            name: JOB_CONTAINER.into(),
            image: Some(service.image.clone()),
            command: Some(vec![SUPERVISOR.into()]),
            env: Some(env),
            env_from: Some(vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: service_secret_name(&service.name),
                    optional: Some(true),
                }),
                ..Default::default()
            }]),
            resources: Some(job_resources(service)),
            termination_message_path: Some(REPORT_PATH.into()),
            termination_message_policy: Some("File".into()),
            volume_mounts: Some(volume_mounts),
            // Whatever user the image runs as, it gains no privilege (setuid, capabilities).
            security_context: Some(unprivileged()),
            ..Default::default()
        }],
        volumes: Some(volumes),
        ..pod_of(service)
    };
    // A mount's sidecar uploads what the job wrote after it, within the Job's deadline.
    let mut uploads = 0;
    if let Some(image) = &settings.rclone_image
        && let Some(remote) = super::mount::remote_of(execution)
    {
        super::mount::add_sidecar(&mut pod, &execution.job, &remote.seen_at(), image);
        uploads = super::mount::UPLOAD_SECONDS;
    }
    Job {
        metadata: ObjectMeta {
            name: Some(execution.job.clone()),
            namespace: Some(namespace.to_string()),
            ..metadata.clone()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            ttl_seconds_after_finished: Some(
                i32::try_from(settings.job_ttl.as_secs()).unwrap_or(i32::MAX),
            ),
            active_deadline_seconds: Some(
                i64::try_from(execution.timeout.as_secs()).unwrap_or(i64::MAX / 2)
                    + GRACE_SECONDS
                    + uploads,
            ),
            template: PodTemplateSpec {
                metadata: Some(metadata),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Where the supervisor is in a job's or a worker's container.
pub(super) const SUPERVISOR: &str = "/oscar/bin/supervisor";

/// The volume the supervisor is copied into, beside the service's image.
pub(super) fn bin_volume() -> Volume {
    Volume {
        name: "oscar-bin".into(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity("64Mi".into())),
            medium: None,
        }),
        ..Default::default()
    }
}

/// The init container copying the static supervisor from the platform's image into
/// [`bin_volume`], so that it runs in any image.
pub(super) fn supervisor_init(settings: &ClusterSettings) -> Container {
    Container {
        name: "oscar-supervisor".into(),
        image: Some(settings.platform_image.clone()),
        command: Some(vec![
            "cp".into(),
            SUPERVISOR_IN_IMAGE.into(),
            SUPERVISOR.into(),
        ]),
        volume_mounts: Some(vec![mount("oscar-bin", BIN_DIR, false)]),
        resources: Some(resources(&[("cpu", "50m"), ("memory", "32Mi")], &[])),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(10001),
            read_only_root_filesystem: Some(true),
            ..unprivileged()
        }),
        ..Default::default()
    }
}

/// What every pod of a service has: no API token, no other services' addresses in its
/// environment, the runtime's seccomp profile, and the service's pull Secrets.
pub(super) fn pod_of(service: &Service) -> PodSpec {
    PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        image_pull_secrets: (!service.image_pull_secrets.is_empty()).then(|| {
            service
                .image_pull_secrets
                .iter()
                .map(|name| LocalObjectReference { name: name.clone() })
                .collect()
        }),
        security_context: Some(PodSecurityContext {
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What every container of a job runs with: no privilege escalation, no capabilities.
pub(super) fn unprivileged() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        ..Default::default()
    }
}

/// The service's labels or annotations without the keys it may not set. Validation refuses
/// them; this keeps one stored before that rule (or written to the database) off the pod.
pub(super) fn services_own(map: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    map.iter()
        .filter(|(key, _)| !is_reserved_key(key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// The service's cpu and memory as requests and limits (the same: jobs get what they ask
/// for), and its GPU.
pub(super) fn job_resources(service: &Service) -> ResourceRequirements {
    let mut amounts = Vec::new();
    if !service.cpu.is_empty() {
        amounts.push(("cpu", service.cpu.as_str()));
    }
    if !service.memory.is_empty() {
        amounts.push(("memory", service.memory.as_str()));
    }
    let gpu: &[(&str, &str)] = if service.enable_gpu {
        &[("nvidia.com/gpu", "1")]
    } else {
        &[]
    };
    resources(&amounts, gpu)
}

fn resources(amounts: &[(&str, &str)], limits_only: &[(&str, &str)]) -> ResourceRequirements {
    let map = |items: &mut dyn Iterator<Item = &(&str, &str)>| {
        items
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect::<BTreeMap<_, _>>()
    };
    ResourceRequirements {
        requests: Some(map(&mut amounts.iter())),
        limits: Some(map(&mut amounts.iter().chain(limits_only))),
        claims: None,
    }
}

pub(super) fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    }
}

pub(super) fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.to_string(),
        mount_path: path.to_string(),
        read_only: Some(read_only),
        ..Default::default()
    }
}

pub(super) fn managed<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(MANAGED_LABEL.to_string(), MANAGED_BY.to_string())]);
    labels.extend(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    labels
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    use super::*;
    use crate::jobs::executor::{JobVolume, StorageAccess};

    pub(crate) fn settings(namespacing: Namespacing) -> ClusterSettings {
        ClusterSettings {
            namespace: "oscar-svc".into(),
            namespacing,
            platform_image: "ghcr.io/example/oscar:1.0".into(),
            job_ttl: Duration::from_secs(3600),
            pending_timeout: Duration::from_secs(300),
            exposed_routes: None,
            allow_node_ports: false,
            storage_class: None,
            volume_limits: Default::default(),
            worker_port: 8080,
            rclone_image: None,
        }
    }

    fn service(gpu: bool) -> Service {
        let mut service = Service::from_json(serde_json::json!({
            "name": "grayify", "image": "ghcr.io/grycap/imagemagick", "script": "convert",
            "cpu": "0.5", "memory": "256Mi", "enable_gpu": gpu,
            "image_pull_secrets": ["regcred"],
            "labels": {"team": "vision"}, "annotations": {"note": "demo"},
            "environment": {"variables": {"MODE": "gray"}},
            "input": [{"storage_provider": "minio.default", "path": "grayify/in"}],
            "output": [{"storage_provider": "minio.default", "path": "grayify/out"}]
        }))
        .unwrap();
        service.owner = "alice@example.org".into();
        service
    }

    const EVENT: &str = "{\"Key\": \"grayify/in/a.png\"}";

    fn execution(service: &Service) -> Execution {
        execution_with(service, ("environment.secrets.API_KEY", "planted-secret"))
    }

    /// The embedded store as a cluster's jobs reach it.
    pub(crate) fn storage() -> StorageAccess {
        StorageAccess {
            endpoint: "http://minio.minio:9000".into(),
            public_endpoint: "http://minio.minio:9000".into(),
            region: "us-east-1".into(),
            access_key: "root".into(),
            secret_key: "root-secret".into(),
            scoped_keys: true,
        }
    }

    /// A job of `service`, with one stored secret (`path`, value).
    fn execution_with(service: &Service, (path, value): (&str, &str)) -> Execution {
        let secrets = BTreeMap::from([(path.to_string(), value.to_string())]);
        Execution::new(
            "grayify-0e5b7a4c-8f3a-4d55-9d5e-2b1f0c9a7e11",
            service,
            &secrets,
            EVENT,
            &storage(),
            Duration::from_secs(300),
            false,
        )
    }

    /// Settings with mounts on, and a job of `service` mounting a WebDAV folder.
    fn mounting(service: &Service) -> (ClusterSettings, Execution) {
        let settings = ClusterSettings {
            rclone_image: Some("rclone/rclone:1.68".into()),
            ..settings(Namespacing::PerUser)
        };
        let mut service = service.clone();
        service.inactive.insert(
            "storage_providers".into(),
            serde_json::json!({"webdav": {"dcache": {"hostname": "dav.example", "login": "u"}}}),
        );
        service.inactive.insert(
            "mount".into(),
            serde_json::json!({"storage_provider": "webdav.dcache", "path": "data/shared",
                "options": "--read-only"}),
        );
        let execution = execution_with(
            &service,
            ("storage_providers.webdav.dcache.password", "dav-password"),
        );
        (settings, execution)
    }

    #[test]
    fn a_mount_is_a_privileged_sidecar_whose_credentials_stay_in_the_jobs_secret() {
        let service = service(false);
        let (settings, execution) = mounting(&service);
        let made = job(&service, &execution, &settings, "oscar-svc");
        let pod = made.spec.unwrap().template.spec.unwrap();
        let inits = pod.init_containers.unwrap();
        let sidecar = inits.iter().find(|c| c.name == "oscar-mount").unwrap();
        // Started before the job's container, which finds /mnt already mounted.
        assert_eq!(sidecar.restart_policy.as_deref(), Some("Always"));
        assert!(sidecar.startup_probe.is_some());
        assert_eq!(
            sidecar.security_context.as_ref().unwrap().privileged,
            Some(true)
        );
        let env = sidecar.env.clone().unwrap();
        let value = |name: &str| env.iter().find(|e| e.name == name).unwrap().clone();
        assert_eq!(value("MOUNT_AT").value.as_deref(), Some("/mnt/data/shared"));
        // Credentials never in the pod's spec: from the job's own Secret, which holds nothing
        // the sidecar does not read.
        let secret = job_secret(&execution, EVENT, "oscar-svc", &service.name, "uid-1");
        let data = secret.string_data.unwrap();
        assert_eq!(data["MOUNT_PASSWORD"], "dav-password");
        assert_eq!(data["RCLONE_CONFIG_OSCAR_URL"], "https://dav.example");
        assert_eq!(data["MOUNT_PATH"], "data/shared");
        assert_eq!(data["MOUNT_FLAGS"], "--read-only");
        for key in data
            .keys()
            .filter(|k| k.starts_with("RCLONE_") || k.starts_with("MOUNT_"))
        {
            let from = value(key).value_from.unwrap().secret_key_ref.unwrap();
            assert_eq!(from.name, execution.job);
        }
        assert!(
            !serde_json::to_string(&pod.containers)
                .unwrap()
                .contains("dav-password")
        );
        assert!(
            !serde_json::to_string(&inits)
                .unwrap()
                .contains("dav-password")
        );
        let main = &pod.containers[0];
        let at_mnt = main
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.mount_path == "/mnt")
            .unwrap();
        assert_eq!(at_mnt.mount_propagation.as_deref(), Some("HostToContainer"));
        // Time for the sidecar to upload what the job wrote.
        assert_eq!(pod.termination_grace_period_seconds, Some(600));

        // Without mounts turned on, nothing is added (the service is refused before).
        let plain = job(
            &service,
            &execution,
            &settings_without_mounts(),
            "oscar-svc",
        );
        let pod = plain.spec.unwrap().template.spec.unwrap();
        assert!(!serde_json::to_string(&pod).unwrap().contains("oscar-mount"));
    }

    fn settings_without_mounts() -> ClusterSettings {
        settings(Namespacing::PerUser)
    }

    /// Representative objects, for the tests here and the schema validation in `make test`.
    pub fn examples() -> Vec<(String, serde_json::Value)> {
        let settings = settings(Namespacing::PerUser);
        let mut out = Vec::new();
        for gpu in [false, true] {
            let service = service(gpu);
            let execution = execution(&service);
            let ns = namespace_of(&settings, &service.owner);
            let name = if gpu { "job-gpu" } else { "job" };
            out.push((
                name.to_string(),
                json(&job(&service, &execution, &settings, &ns)),
            ));
            if !gpu {
                let owner_uid = "9b6f1c52-1d1e-4c1b-8f0e-0c7d1f2a3b4c";
                let job_secret = job_secret(&execution, EVENT, &ns, &service.name, owner_uid);
                out.push(("job-secret".into(), json(&job_secret)));
                let service_secret = service_secret(
                    &service,
                    &service_secret_name(&service.name),
                    &ns,
                    &execution.secrets,
                );
                out.push(("service-secret".into(), json(&service_secret)));
                out.push((
                    "namespace".into(),
                    json(&namespace(&settings, &ns, &service.owner)),
                ));
                let policy = policy_in(&shipped_policy(), &ns);
                out.push(("network-policy".into(), json(&policy)));
                let mut with_volume = execution.clone();
                with_volume.volume = Some(JobVolume {
                    name: "shared".into(),
                    mount_path: "/data".into(),
                    bytes: 1 << 30,
                });
                let job = job(&service, &with_volume, &settings, &ns);
                out.push(("job-with-volume".into(), json(&job)));
                let claim = volume_claim(&settings, &service.owner, "shared", 1 << 30);
                out.push(("volume-claim".into(), json(&claim)));
                let (mounting, with_mount) = mounting(&service);
                let mounted = super::job(&service, &with_mount, &mounting, &ns);
                out.push(("job-with-mount".into(), json(&mounted)));
                let secret = super::job_secret(&with_mount, EVENT, &ns, &service.name, owner_uid);
                out.push(("job-secret-with-mount".into(), json(&secret)));
            }
        }
        out
    }

    #[test]
    fn a_volume_is_a_shared_claim_its_jobs_mount_read_write() {
        for namespacing in [Namespacing::PerUser, Namespacing::Shared] {
            let settings = settings(namespacing);
            let service = service(false);
            let claim = volume_claim(&settings, &service.owner, "shared", 1 << 30);
            let spec = claim.spec.clone().unwrap();
            assert_eq!(spec.access_modes.unwrap(), ["ReadWriteMany"]);
            let requested = spec.resources.unwrap().requests.unwrap();
            assert_eq!(requested["storage"].0, (1u64 << 30).to_string());
            let claim_name = claim.metadata.name.clone().unwrap();
            assert_eq!(
                claim.metadata.namespace.as_deref(),
                Some(namespace_of(&settings, &service.owner).as_str())
            );
            // Users sharing a namespace cannot name each other's claims.
            let other = volume_claim(&settings, "someone-else", "shared", 1 << 30);
            if namespacing == Namespacing::Shared {
                assert_ne!(other.metadata.name.unwrap(), claim_name);
            }

            let mut execution = execution(&service);
            execution.volume = Some(JobVolume {
                name: "shared".into(),
                mount_path: "/data".into(),
                bytes: 1 << 30,
            });
            let job = job(&service, &execution, &settings, "ns");
            let pod = job.spec.unwrap().template.spec.unwrap();
            let volume = pod
                .volumes
                .unwrap()
                .into_iter()
                .find(|v| v.name == "oscar-volume")
                .unwrap();
            assert_eq!(
                volume.persistent_volume_claim.unwrap().claim_name,
                claim_name
            );
            let mount = pod.containers[0]
                .volume_mounts
                .clone()
                .unwrap()
                .into_iter()
                .find(|m| m.name == "oscar-volume")
                .unwrap();
            assert_eq!(
                (mount.mount_path.as_str(), mount.read_only),
                ("/data", Some(false))
            );
        }
    }

    fn json(object: &impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(object).expect("Kubernetes objects serialise")
    }

    #[test]
    fn a_job_runs_once_in_the_users_image_with_the_supervisor_copied_in() {
        let settings = settings(Namespacing::Shared);
        let service = service(false);
        let execution = execution(&service);
        let job = job(&service, &execution, &settings, "oscar-svc");
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(job.metadata.name.as_deref(), Some(execution.job.as_str()));
        assert_eq!(job.metadata.namespace.as_deref(), Some("oscar-svc"));
        let labels = job.metadata.labels.clone().unwrap();
        assert_eq!(labels[SERVICE_LABEL], "grayify");
        assert_eq!(labels[JOB_LABEL], execution.job);
        assert_eq!(labels[MANAGED_LABEL], MANAGED_BY);
        assert_eq!(labels["team"], "vision");
        assert_eq!(
            job.metadata.annotations.unwrap()[OWNER_ANNOTATION],
            "alice@example.org"
        );

        let spec = job.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.ttl_seconds_after_finished, Some(3600));
        assert_eq!(spec.active_deadline_seconds, Some(360));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "regcred");
        let init = &pod.init_containers.unwrap()[0];
        assert_eq!(init.image.as_deref(), Some("ghcr.io/example/oscar:1.0"));
        assert_eq!(
            init.security_context.as_ref().unwrap().run_as_non_root,
            Some(true)
        );

        let main = &pod.containers[0];
        assert_eq!(main.name, JOB_CONTAINER);
        assert_eq!(main.image.as_deref(), Some("ghcr.io/grycap/imagemagick"));
        assert_eq!(main.command.as_ref().unwrap()[0], "/oscar/bin/supervisor");
        let env: BTreeMap<_, _> = main
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or_default()))
            .collect();
        assert_eq!(env["MODE"], "gray");
        assert_eq!(env["JOB_UUID"], execution.job);
        assert_eq!(env["OSCAR_RESULT_FILE"], REPORT_PATH);
        assert!(
            !env.contains_key("API_KEY"),
            "secrets come from the service's Secret"
        );
        let from = main.env_from.as_ref().unwrap()[0]
            .secret_ref
            .as_ref()
            .unwrap();
        assert_eq!(from.name, "grayify-env");
        let resources = main.resources.as_ref().unwrap();
        assert_eq!(resources.limits.as_ref().unwrap()["memory"].0, "256Mi");
        assert_eq!(resources.requests.as_ref().unwrap()["cpu"].0, "0.5");
        assert!(
            !resources
                .limits
                .as_ref()
                .unwrap()
                .contains_key("nvidia.com/gpu")
        );
        // Nothing secret in the Job itself.
        assert!(!text.contains("planted-secret") && !text.contains(&execution.store_keys.1));
    }

    #[test]
    fn no_container_of_a_job_can_gain_privileges() {
        let settings = settings(Namespacing::Shared);
        let service = service(false);
        let job = job(&service, &execution(&service), &settings, "oscar-svc");
        let pod = job.spec.unwrap().template.spec.unwrap();
        let containers = pod.init_containers.iter().flatten().chain(&pod.containers);
        let mut seen = 0;
        for container in containers {
            let context = container.security_context.as_ref().unwrap();
            assert_eq!(
                context.allow_privilege_escalation,
                Some(false),
                "{}",
                container.name
            );
            let capabilities = context.capabilities.as_ref().unwrap();
            assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_string()][..]));
            assert_eq!(capabilities.add, None);
            assert_ne!(context.privileged, Some(true));
            seen += 1;
        }
        assert_eq!(seen, 2);
    }

    /// A service stored before keys were checked, or written to the database directly: its
    /// reserved keys stay off the pod, which carries the platform's own values.
    #[test]
    fn reserved_labels_and_annotations_never_reach_the_pod() {
        let settings = settings(Namespacing::Shared);
        let mut service = service(false);
        service.labels.extend([
            (MANAGED_LABEL.to_string(), "someone-else".to_string()),
            (JOB_LABEL.to_string(), "another-job".to_string()),
            (
                "app.kubernetes.io/component".to_string(),
                "server".to_string(),
            ),
        ]);
        service.annotations.extend([
            (
                "container.apparmor.security.beta.kubernetes.io/oscar-container".to_string(),
                "unconfined".to_string(),
            ),
            (OWNER_ANNOTATION.to_string(), ADMIN_OWNER.to_string()),
        ]);
        let execution = execution(&service);
        let job = job(&service, &execution, &settings, "oscar-svc");
        let template = job.spec.unwrap().template.metadata.unwrap();
        let labels = template.labels.unwrap();
        let annotations = template.annotations.unwrap();
        assert_eq!(labels[MANAGED_LABEL], MANAGED_BY);
        assert_eq!(labels[JOB_LABEL], execution.job);
        assert!(!labels.contains_key("app.kubernetes.io/component"));
        assert_eq!(labels["team"], "vision");
        assert_eq!(annotations[OWNER_ANNOTATION], "alice@example.org");
        assert_eq!(annotations["note"], "demo");
        assert_eq!(annotations.len(), 2, "{annotations:?}");
    }

    /// Every key the platform sets is one a service may not.
    #[test]
    fn the_platforms_keys_are_reserved() {
        for key in [SERVICE_LABEL, JOB_LABEL, MANAGED_LABEL, OWNER_ANNOTATION] {
            assert!(is_reserved_key(key), "{key}");
        }
    }

    #[test]
    fn a_users_namespace_enforces_the_shared_namespaces_pod_security() {
        let shipped = include_str!("../../../deploy/kubernetes/base/namespaces.yaml");
        let shared = serde_norway::Deserializer::from_str(shipped)
            .map(|doc| <Namespace as serde::Deserialize>::deserialize(doc).unwrap())
            .find(|ns| ns.metadata.name.as_deref() == Some("oscar-svc"))
            .unwrap();
        let security = |ns: &Namespace| -> BTreeMap<String, String> {
            ns.metadata
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| k.starts_with("pod-security.kubernetes.io/"))
                .collect()
        };
        let settings = settings(Namespacing::PerUser);
        let users = namespace(&settings, "oscar-svc-0123456789", "alice@example.org");
        assert!(!security(&shared).is_empty());
        assert_eq!(security(&users), security(&shared));
        // Mounts' rclone sidecars are privileged.
        let mounting = ClusterSettings {
            rclone_image: Some("rclone/rclone:1.68".into()),
            ..settings
        };
        let users = namespace(&mounting, "oscar-svc-0123456789", "alice@example.org");
        assert_eq!(
            security(&users)["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
    }

    fn shipped_policy() -> NetworkPolicy {
        serde_norway::from_str(include_str!(
            "../../../deploy/kubernetes/base/networkpolicy.yaml"
        ))
        .unwrap()
    }

    #[test]
    fn a_users_namespace_gets_the_shared_namespaces_policy() {
        let shared = shipped_policy();
        let copy = policy_in(&shared, "oscar-svc-0123456789");
        assert_eq!(copy.metadata.name.as_deref(), Some(JOBS_POLICY));
        assert_eq!(
            copy.metadata.namespace.as_deref(),
            Some("oscar-svc-0123456789")
        );
        assert_eq!(copy.metadata.labels.unwrap()[MANAGED_LABEL], MANAGED_BY);
        assert_eq!(copy.spec, shared.spec);
    }

    /// The labels of the platform server's pods, as `deploy/kubernetes/base` ships them.
    pub(crate) fn server_pod_labels() -> BTreeMap<String, String> {
        let server: Deployment = serde_norway::from_str(include_str!(
            "../../../deploy/kubernetes/base/deployment.yaml"
        ))
        .unwrap();
        server
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .labels
            .unwrap()
    }

    /// Whether `selector` selects an object with `labels` (Kubernetes' rules).
    pub(crate) fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
        let by_labels = selector
            .match_labels
            .iter()
            .flatten()
            .all(|(key, value)| labels.get(key) == Some(value));
        let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
            let listed = labels
                .get(&e.key)
                .is_some_and(|value| e.values.iter().flatten().any(|v| v == value));
            match e.operator.as_str() {
                "Exists" => labels.contains_key(&e.key),
                "DoesNotExist" => !labels.contains_key(&e.key),
                "In" => listed,
                "NotIn" => !listed,
                other => panic!("unknown operator {other}"),
            }
        });
        by_labels && by_expressions
    }

    /// The shipped NetworkPolicy confines exactly the pods the builder makes: it selects
    /// every job pod, not the server's, and only on keys services cannot set.
    #[test]
    fn the_shipped_network_policy_selects_job_pods_on_reserved_keys() {
        let policy = shipped_policy();
        assert_eq!(policy.metadata.name.as_deref(), Some(JOBS_POLICY));
        let selector = policy.spec.unwrap().pod_selector.unwrap();
        let service = service(false);
        let job = job(
            &service,
            &execution(&service),
            &settings(Namespacing::Shared),
            "x",
        );
        let pod_labels = job.spec.unwrap().template.metadata.unwrap().labels.unwrap();
        assert!(selects(&selector, &pod_labels), "{pod_labels:?}");

        assert!(!selects(&selector, &server_pod_labels()));

        let keys = selector.match_labels.iter().flatten().map(|(key, _)| key);
        let keys = keys.chain(selector.match_expressions.iter().flatten().map(|e| &e.key));
        for key in keys {
            assert!(is_reserved_key(key), "{key}");
        }
    }

    #[test]
    fn gpu_services_ask_for_one_gpu() {
        let settings = settings(Namespacing::Shared);
        let service = service(true);
        let job = job(&service, &execution(&service), &settings, "oscar-svc");
        let pod = job.spec.unwrap().template.spec.unwrap();
        let limits = pod.containers[0].resources.clone().unwrap().limits.unwrap();
        assert_eq!(limits["nvidia.com/gpu"].0, "1");
    }

    #[test]
    fn the_job_secret_carries_the_files_and_goes_with_the_job() {
        let service = service(false);
        let execution = execution(&service);
        let secret = job_secret(&execution, EVENT, "oscar-svc", &service.name, "uid-1");
        let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Job", "uid-1"));
        let data = secret.string_data.unwrap();
        assert!(data["function_config.yaml"].contains("grayify/in"));
        assert_eq!(data["script.sh"], "convert");
        assert_eq!(data["event"], EVENT);
        assert_eq!(data["accessKey"], format!("OSCJ-{}", execution.job));
        let service_secret = service_secret(
            &service,
            &service_secret_name(&service.name),
            "oscar-svc",
            &execution.secrets,
        );
        assert_eq!(service_secret.data.unwrap()["API_KEY"].0, b"planted-secret");
    }

    #[test]
    fn a_pull_secret_is_usable_by_the_user_it_is_marked_for_and_the_admin() {
        let marked = |owner: Option<&str>| ObjectMeta {
            annotations: owner
                .map(|owner| BTreeMap::from([(OWNER_ANNOTATION.to_string(), owner.to_string())])),
            ..Default::default()
        };
        assert!(may_pull_with(
            &marked(Some("alice@example.org")),
            "alice@example.org"
        ));
        assert!(!may_pull_with(
            &marked(Some("alice@example.org")),
            "bob@example.org"
        ));
        assert!(!may_pull_with(&marked(None), "bob@example.org"));
        assert!(may_pull_with(&marked(None), ADMIN_OWNER));
    }

    #[test]
    fn users_get_a_namespace_of_their_own_when_asked() {
        let per_user = settings(Namespacing::PerUser);
        let alice = namespace_of(&per_user, "alice@example.org");
        assert_eq!(alice, namespace_of(&per_user, "alice@example.org"));
        assert_ne!(alice, namespace_of(&per_user, "bob@example.org"));
        assert!(alice.starts_with("oscar-svc-") && alice.len() <= 63);
        assert!(
            alice
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert_eq!(namespace_of(&per_user, ADMIN_OWNER), "oscar-svc");
        let shared = settings(Namespacing::Shared);
        assert_eq!(namespace_of(&shared, "alice@example.org"), "oscar-svc");
    }

    /// Also writes the examples for validation ([`write_examples`]).
    #[test]
    fn the_examples_cover_every_builder() {
        let examples = examples();
        let kinds: Vec<&str> = examples
            .iter()
            .map(|(_, v)| v["kind"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            kinds,
            [
                "Job",
                "Secret",
                "Secret",
                "Namespace",
                "NetworkPolicy",
                "Job",
                "PersistentVolumeClaim",
                "Job",
                "Secret",
                "Job"
            ]
        );
        write_examples(&examples);
    }

    /// Writes examples as YAML to `$OSCAR_MANIFESTS_DIR` when set: `make test` validates them
    /// against the Kubernetes 1.33 schemas.
    pub(crate) fn write_examples(examples: &[(String, serde_json::Value)]) {
        if let Some(dir) = std::env::var_os("OSCAR_MANIFESTS_DIR") {
            let dir = std::path::Path::new(&dir);
            std::fs::create_dir_all(dir).unwrap();
            for (name, value) in examples {
                let yaml = serde_norway::to_string(value).unwrap();
                std::fs::write(dir.join(format!("generated-{name}.yaml")), yaml).unwrap();
            }
        }
    }
}
