//! Checks a service definition and applies OSCAR's defaults and normalisations. Every problem
//! is reported with the path of the field, e.g. `input[0].path: must not be empty`.

use serde::{Deserialize, Serialize};

use super::model::{JOB_LABEL, MOUNT_LABEL, OWNER_ANNOTATION, SERVICE_LABEL, Service, StorageIo};
use super::quantity;

pub const DEFAULT_CPU: &str = "0.2";
pub const DEFAULT_MEMORY: &str = "256Mi";
pub const LOG_LEVELS: &[&str] = &["NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const INPUT_PROVIDERS: &[&str] = &["minio", "s3", "webdav"];
const OUTPUT_PROVIDERS: &[&str] = &["minio", "s3", "onedata", "webdav"];
/// Each provider kind this platform reaches, with the fields a declaration needs.
const PROVIDER_FIELDS: &[(&str, &[&str])] = &[
    ("minio", &["endpoint"]),
    ("s3", &[]),
    ("webdav", &["hostname"]),
    ("onedata", &["oneprovider_host", "space"]),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Normalises `service` in place (defaults, provider names, paths, log level, line endings)
/// The most instances a service may ask for (`synchronous` and `expose` scales): each is a
/// process or a pod, and a definition must not be able to ask for millions.
pub const MAX_SCALE: u32 = 100;

/// and returns every problem found, or Ok when it can be stored.
pub fn prepare(service: &mut Service) -> Result<(), Vec<FieldError>> {
    let mut errors = Errors(Vec::new());
    normalise(service);

    if service.name.is_empty() {
        errors.add("name", "is required");
    } else if let Err(why) = dns_label(&service.name, 39) {
        errors.add("name", why);
    }
    if service.image.is_empty() {
        errors.add("image", "is required");
    } else if service.image.chars().any(char::is_whitespace) {
        errors.add(
            "image",
            format!("{:?} must not contain spaces", service.image),
        );
    }
    // An exposed service may run its image's own command instead.
    let own_command = service
        .expose
        .as_ref()
        .is_some_and(|e| e.port().is_some() && e.default_command);
    if service.script.trim().is_empty() && !own_command {
        errors.add("script", "is required");
    }
    for (field, value) in [
        ("cpu", &service.cpu),
        ("memory", &service.memory),
        (
            "ephemeral_storage_request",
            &service.ephemeral_storage_request,
        ),
    ] {
        if !value.is_empty() {
            match quantity::parse(value) {
                Ok(0.0) if field != "ephemeral_storage_request" => {
                    errors.add(field, "must be greater than zero")
                }
                Ok(_) => {}
                Err(why) => errors.add(field, why),
            }
        }
    }
    if !LOG_LEVELS.contains(&service.log_level.as_str()) {
        errors.add(
            "log_level",
            format!(
                "{:?} is not one of {}",
                service.log_level,
                LOG_LEVELS.join(", ")
            ),
        );
    }
    for (i, secret) in service.image_pull_secrets.iter().enumerate() {
        if let Err(why) = dns_subdomain(secret) {
            errors.add(format!("image_pull_secrets[{i}]"), why);
        }
    }

    let env = &service.environment;
    for (kind, map) in [("variables", &env.variables), ("secrets", &env.secrets)] {
        for name in map.keys() {
            if !is_env_name(name) {
                errors.add(
                    format!("environment.{kind}.{name}"),
                    "is not a valid variable name (letters, digits, '_', '-', '.'; not starting with a digit)",
                );
            }
        }
    }
    for name in env
        .variables
        .keys()
        .filter(|k| env.secrets.contains_key(*k))
    {
        errors.add(
            format!("environment.secrets.{name}"),
            "is also defined in environment.variables",
        );
    }
    for (key, value) in &service.labels {
        // As upstream, it is set to the service's name below whatever was sent (a definition
        // read back, or copied from another service, carries one).
        if let (false, Err(why)) = (key == SERVICE_LABEL, service_key(key)) {
            errors.add(format!("labels.{key}"), why);
        }
        if let Err(why) = label_value(value) {
            errors.add(format!("labels.{key}"), why);
        }
    }
    for key in service.annotations.keys() {
        if let Err(why) = service_key(key) {
            errors.add(format!("annotations.{key}"), why);
        }
    }

    check_storage(
        &mut errors,
        "input",
        &service.input,
        INPUT_PROVIDERS,
        service,
    );
    check_storage(
        &mut errors,
        "output",
        &service.output,
        OUTPUT_PROVIDERS,
        service,
    );
    for (o, output) in service.output.iter().enumerate() {
        for input in &service.input {
            if output.storage_provider == input.storage_provider
                && is_within(&output.path, &input.path)
            {
                errors.add(
                    format!("output[{o}].path"),
                    format!(
                        "{:?} lies inside the input folder {:?}: every result would start another job",
                        output.path, input.path
                    ),
                );
            }
        }
    }

    let sync = service.synchronous;
    if sync.max_scale > 0 && sync.min_scale > sync.max_scale {
        errors.add(
            "synchronous.min_scale",
            format!("must not exceed max_scale ({})", sync.max_scale),
        );
    }
    for (field, value) in [
        ("synchronous.min_scale", sync.min_scale),
        ("synchronous.max_scale", sync.max_scale),
    ] {
        if value > MAX_SCALE {
            errors.add(field, format!("must be at most {MAX_SCALE}"));
        }
    }
    for (i, user) in service.allowed_users.iter().enumerate() {
        if user.chars().any(char::is_control) {
            errors.add(
                format!("allowed_users[{i}]"),
                "must not contain control characters",
            );
        }
    }
    if let Some(expose) = &service.expose {
        for (field, message) in expose.errors() {
            errors.add(field, message);
        }
    }
    for field in super::model::INACTIVE_FIELDS {
        if let Some(value) = service.inactive.get(*field) {
            let expected_object = matches!(
                *field,
                "mount" | "volume" | "federation" | "kserve" | "storage_providers" | "clusters"
            );
            if expected_object && !(value.is_object() || value.is_null()) {
                errors.add(*field, "must be an object");
            }
        }
    }
    check_providers(&mut errors, service);
    check_volume(&mut errors, service);
    for (field, message) in super::mount::errors(service) {
        errors.add(field, message);
    }
    for (field, message) in super::federation::errors(service) {
        errors.add(field, message);
    }

    if errors.0.is_empty() {
        // Upstream adds it to the stored service, keeping the user's other labels.
        service
            .labels
            .insert(SERVICE_LABEL.into(), service.name.clone());
        Ok(())
    } else {
        Err(errors.0)
    }
}

fn normalise(service: &mut Service) {
    service.name = service.name.trim().to_string();
    service.image = service.image.trim().to_string();
    service.script = service.script.replace("\r\n", "\n");
    if let Some(expose) = &mut service.expose {
        expose.normalise();
    }
    if service.cpu.trim().is_empty() {
        service.cpu = DEFAULT_CPU.into();
    }
    if service.memory.trim().is_empty() {
        service.memory = DEFAULT_MEMORY.into();
    }
    service.cpu = service.cpu.trim().to_string();
    service.memory = service.memory.trim().to_string();
    service.log_level = match service.log_level.trim() {
        "" => "INFO".into(),
        level => level.to_ascii_uppercase(),
    };
    service.allowed_users = service
        .allowed_users
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    let name = service.name.clone();
    for io in service.input.iter_mut().chain(service.output.iter_mut()) {
        normalise_io(io, &name);
    }
}

fn normalise_io(io: &mut StorageIo, service_name: &str) {
    let provider = io.storage_provider.trim();
    io.storage_provider = match provider {
        "" => super::model::PLATFORM_STORE.into(),
        p if !p.contains('.') => format!("{p}.default"),
        p => p.to_string(),
    };
    io.path = io.path.trim().trim_matches('/').trim().to_string();
    let kind = provider_kind(&io.storage_provider);
    // OSCAR: a bucket-less path gets the service's name as its bucket (`out` → `<svc>/out`).
    if (kind == "minio" || kind == "s3")
        && !io.path.is_empty()
        && !io.path.contains('/')
        && !service_name.is_empty()
    {
        io.path = format!("{service_name}/{}", io.path);
    }
}

fn provider_kind(provider: &str) -> &str {
    provider.split('.').next().unwrap_or(provider)
}

fn check_storage(
    errors: &mut Errors,
    list: &str,
    entries: &[StorageIo],
    allowed: &[&str],
    service: &Service,
) {
    for (i, io) in entries.iter().enumerate() {
        let (kind, id) = io
            .storage_provider
            .split_once('.')
            .unwrap_or((&io.storage_provider, ""));
        if !allowed.contains(&kind) {
            errors.add(
                format!("{list}[{i}].storage_provider"),
                format!(
                    "{:?} is not a supported {list} provider (one of: {})",
                    io.storage_provider,
                    allowed.join(", ")
                ),
            );
        } else if !is_builtin_provider(kind, id) && !declares_provider(service, kind, id) {
            errors.add(
                format!("{list}[{i}].storage_provider"),
                format!(
                    "{:?} is not declared in storage_providers.{kind}",
                    io.storage_provider
                ),
            );
        }
        if io.path.is_empty() {
            errors.add(format!("{list}[{i}].path"), "must not be empty");
        } else if has_odd_segment(&io.path) {
            errors.add(
                format!("{list}[{i}].path"),
                format!("{:?} has an empty, '.' or '..' segment", io.path),
            );
        } else if kind == "minio" || kind == "s3" {
            let bucket = io.path.split('/').next().unwrap_or_default();
            if let Err(why) = bucket_name(bucket) {
                errors.add(
                    format!("{list}[{i}].path"),
                    format!("bucket {bucket:?}: {why}"),
                );
            }
        }
    }
}

/// Whether a path (a key, a folder) has a `.` or `..` segment, which URLs and file systems
/// resolve out of the folder it names.
pub fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|s| s == "." || s == "..")
}

/// Whether a path has a segment no folder may have: empty, `.` or `..`.
pub(super) fn has_odd_segment(path: &str) -> bool {
    path.split('/').any(str::is_empty) || has_dot_segment(path)
}

/// Where no volume may be mounted: what the sandbox and the pod provide themselves.
const RESERVED_MOUNT_PATHS: &[&str] = &["/oscar", "/proc", "/dev", "/sys", "/tmp"];

/// The reserved folder `path` (absolute, normalised) lies in, if any.
pub fn reserved_mount_path(path: &str) -> Option<&'static str> {
    RESERVED_MOUNT_PATHS
        .iter()
        .copied()
        .find(|reserved| is_within(path, reserved))
}

/// `volume`: a name or a size, and an absolute mount path of the job's own.
fn check_volume(errors: &mut Errors, service: &Service) {
    let Some(value) = service.inactive.get("volume").filter(|v| !v.is_null()) else {
        return;
    };
    let Ok(volume) = serde_json::from_value::<crate::volumes::ServiceVolume>(value.clone()) else {
        errors.add(
            "volume",
            "must be {name?, size?, mount_path, lifecycle_policy?} with text values",
        );
        return;
    };
    if volume.name.is_empty() && volume.size.is_empty() {
        errors.add(
            "volume",
            "needs a size (to make a volume) or the name of an existing volume",
        );
    }
    if !volume.name.is_empty()
        && let Err(why) = dns_label(&volume.name, 63)
    {
        errors.add("volume.name", why);
    }
    if !volume.size.is_empty() {
        match quantity::parse(&volume.size) {
            Ok(bytes) if bytes >= 1.0 => {}
            Ok(_) => errors.add("volume.size", "must be at least one byte"),
            Err(why) => errors.add("volume.size", why),
        }
    }
    let path = volume.mount_path.as_str();
    if !path.starts_with('/') || path == "/" {
        errors.add(
            "volume.mount_path",
            format!("{path:?} must be an absolute path below /, e.g. /data"),
        );
    } else if has_odd_segment(&path[1..]) {
        errors.add(
            "volume.mount_path",
            format!("{path:?} has an empty, '.' or '..' segment"),
        );
    } else if let Some(reserved) = reserved_mount_path(path) {
        errors.add(
            "volume.mount_path",
            format!("{path:?} is inside {reserved}, which the platform provides to jobs"),
        );
    }
    if !matches!(volume.lifecycle_policy.as_str(), "" | "delete" | "retain") {
        errors.add("volume.lifecycle_policy", "must be delete or retain");
    }
}

/// Every declared provider is one this platform reaches, with what it needs to be reached.
fn check_providers(errors: &mut Errors, service: &Service) {
    let Some(serde_json::Value::Object(kinds)) = service.inactive.get("storage_providers") else {
        return;
    };
    for (kind, entries) in kinds {
        let Some((_, required)) = PROVIDER_FIELDS.iter().find(|(k, _)| k == kind) else {
            let known: Vec<_> = PROVIDER_FIELDS.iter().map(|(k, _)| *k).collect();
            let why = if kind == "rucio" {
                "Rucio is not supported by this platform"
            } else {
                "is not a provider type"
            };
            errors.add(
                format!("storage_providers.{kind}"),
                format!("{why} (one of: {})", known.join(", ")),
            );
            continue;
        };
        let serde_json::Value::Object(entries) = entries else {
            errors.add(format!("storage_providers.{kind}"), "must be an object");
            continue;
        };
        for (id, entry) in entries {
            let path = format!("storage_providers.{kind}.{id}");
            if is_builtin_provider(kind, id) {
                continue;
            }
            let Some(entry) = entry.as_object() else {
                errors.add(path, "must be an object");
                continue;
            };
            for field in *required {
                if entry
                    .get(*field)
                    .and_then(serde_json::Value::as_str)
                    .is_none_or(|v| v.trim().is_empty())
                {
                    errors.add(format!("{path}.{field}"), "must not be empty");
                }
            }
            // aws-sdk-s3's TLS has no switch for unverified certificates.
            if matches!(kind.as_str(), "minio" | "s3")
                && entry.get("verify") == Some(&serde_json::Value::Bool(false))
            {
                errors.add(
                    format!("{path}.verify"),
                    "false is not supported for S3 stores: give the store a certificate a public CA signs, or an http:// endpoint on a private network",
                );
            }
        }
    }
}

/// `minio.default` is the platform's own store and needs no declaration.
pub(super) fn is_builtin_provider(kind: &str, id: &str) -> bool {
    kind == "minio" && id == "default"
}

pub(super) fn declares_provider(service: &Service, kind: &str, id: &str) -> bool {
    service
        .inactive
        .get("storage_providers")
        .and_then(|p| p.get(kind))
        .and_then(|p| p.get(id))
        .is_some()
}

/// Whether folder `path` is `folder` or below it.
fn is_within(path: &str, folder: &str) -> bool {
    path == folder
        || path
            .strip_prefix(folder)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A DNS label of at most `max` characters (service and volume names), or why not.
pub fn dns_label(s: &str, max: usize) -> Result<(), String> {
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ends_ok = s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
    if s.len() > max {
        Err(format!("{s:?} is longer than {max} characters"))
    } else if !ok_chars || !ends_ok {
        Err(format!(
            "{s:?} must be lowercase letters, digits and '-', starting and ending with a letter or digit"
        ))
    } else {
        Ok(())
    }
}

/// A Kubernetes object name (Secrets, pull secrets and registry credentials are named so).
pub fn dns_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 253 {
        return Err(format!("{s:?} must be 1 to 253 characters"));
    }
    s.split('.')
        .try_for_each(|label| dns_label(label, 63))
        .map_err(|_| format!("{s:?} is not a valid DNS subdomain name"))
}

/// Key prefixes (with their subdomains) of Kubernetes: their labels and annotations confine
/// pods (AppArmor, seccomp, pod security) or select them (the platform's watches and the jobs'
/// NetworkPolicy select on `app.kubernetes.io/managed-by`).
/// `x-k8s.io` is the Kubernetes SIGs' projects' (Kueue's `kueue.x-k8s.io/queue-name` would let
/// a job pick another tenant's queue and quota).
const RESERVED_DOMAINS: &[&str] = &["kubernetes.io", "k8s.io", "x-k8s.io"];
/// Keys the platform (its service and job labels, its owner annotation) or the Job controller
/// set on job pods.
const RESERVED_KEYS: &[&str] = &[
    SERVICE_LABEL,
    JOB_LABEL,
    MOUNT_LABEL,
    OWNER_ANNOTATION,
    "job-name",
    "controller-uid",
];
/// CRI-O reads pod annotations named `io.kubernetes.cri-o.*` (devices, user namespaces).
const RESERVED_RUNTIME_PREFIX: &str = "io.kubernetes.";

/// Whether a label or annotation key belongs to the cluster or the platform rather than to a
/// service: the one rule validation and the Job builder share.
pub fn is_reserved_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let in_domain = key.rsplit_once('/').is_some_and(|(prefix, _)| {
        RESERVED_DOMAINS
            .iter()
            .any(|domain| prefix == *domain || prefix.ends_with(&format!(".{domain}")))
    });
    in_domain || RESERVED_KEYS.contains(&key.as_str()) || key.starts_with(RESERVED_RUNTIME_PREFIX)
}

/// A key a service may put on its jobs: valid for Kubernetes and not reserved.
fn service_key(key: &str) -> Result<(), String> {
    qualified_name(key)?;
    if is_reserved_key(key) {
        return Err(format!(
            "key {key:?} is reserved: keys under {} (or their subdomains), starting with {:?}, \
             and {} belong to the cluster or the platform",
            RESERVED_DOMAINS.join(", "),
            RESERVED_RUNTIME_PREFIX,
            RESERVED_KEYS.join(", "),
        ));
    }
    Ok(())
}

/// Kubernetes label/annotation key: optional `dns.subdomain/` prefix, then a name.
fn qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        dns_subdomain(prefix)
            .map_err(|_| format!("key prefix {prefix:?} is not a DNS subdomain"))?;
    }
    if is_label_name(name) {
        Ok(())
    } else {
        Err(format!("key {key:?} is not a valid Kubernetes key"))
    }
}

fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "value {value:?} is not a valid label value (63 characters of letters, digits, '-', '_', '.')"
        ))
    }
}

/// The rule label names and non-empty label values share: at most 63 letters, digits, '-',
/// '_' and '.', starting and ending with a letter or digit.
fn is_label_name(s: &str) -> bool {
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && alnum(s.bytes().next())
        && alnum(s.bytes().last())
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.as_bytes()[0].is_ascii_digit()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// S3 bucket naming rules (the subset MinIO enforces).
pub fn bucket_name(name: &str) -> Result<(), String> {
    if !(3..=63).contains(&name.len()) {
        return Err("must be 3 to 63 characters".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err("may hold only lowercase letters, digits, '-' and '.'".into());
    }
    if !name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        || !name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
    {
        return Err("must start and end with a letter or digit".into());
    }
    if name.contains("..") || name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("must not contain '..' or look like an IP address".into());
    }
    Ok(())
}

/// A definition with errors answers 400 naming the first field (and how many more).
impl From<Vec<FieldError>> for crate::AppError {
    fn from(errors: Vec<FieldError>) -> Self {
        let more = match errors.len() {
            0 | 1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        match errors.into_iter().next() {
            Some(first) => {
                crate::AppError::bad_request(first.field, format!("{}{more}", first.message))
            }
            None => crate::AppError::bad_request("service", "is invalid"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(value: serde_json::Value) -> Service {
        Service::from_json(value).unwrap()
    }

    fn minimal() -> serde_json::Value {
        json!({"name": "grayify", "image": "ghcr.io/grycap/imagemagick", "script": "convert \"$INPUT_FILE_PATH\" -type Grayscale \"$TMP_OUTPUT_DIR/out.png\""})
    }

    fn errors_of(value: serde_json::Value) -> Vec<String> {
        let mut s = service(value);
        prepare(&mut s)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn with(extra: serde_json::Value) -> serde_json::Value {
        let mut base = minimal();
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    }

    #[test]
    fn defaults_and_normalisation() {
        let mut s = service(with(json!({
            "script": "line1\r\nline2",
            "log_level": "debug",
            "allowed_users": [" alice ", ""],
            "input": [{"storage_provider": "minio", "path": "/grayify/in/"}],
            "output": [{"path": "out"}]
        })));
        prepare(&mut s).unwrap();
        assert_eq!(
            (s.cpu.as_str(), s.memory.as_str()),
            (DEFAULT_CPU, DEFAULT_MEMORY)
        );
        assert_eq!(s.script, "line1\nline2");
        assert_eq!(s.log_level, "DEBUG");
        assert_eq!(s.allowed_users, ["alice"]);
        assert_eq!(s.input[0].storage_provider, "minio.default");
        assert_eq!(s.input[0].path, "grayify/in");
        assert_eq!(s.output[0].storage_provider, "minio.default");
        assert_eq!(
            s.output[0].path, "grayify/out",
            "a bucket-less path gets the service name as bucket"
        );
    }

    #[test]
    fn required_fields() {
        assert_eq!(
            errors_of(json!({})),
            [
                "name: is required",
                "image: is required",
                "script: is required"
            ]
        );
    }

    #[test]
    fn names_follow_dns_label_rules() {
        assert!(
            errors_of(with(json!({"name": "Gray_ify"})))[0]
                .starts_with("name: \"Gray_ify\" must be lowercase")
        );
        assert!(errors_of(with(json!({"name": "a".repeat(40)})))[0].contains("longer than 39"));
        assert!(errors_of(with(json!({"name": "-x"})))[0].starts_with("name:"));
    }

    #[test]
    fn quantities_are_checked() {
        assert_eq!(
            errors_of(with(json!({"memory": "12X"}))),
            ["memory: \"12X\" is not a Kubernetes quantity (e.g. 0.5, 500m, 256Mi, 1Gi)"]
        );
        assert_eq!(
            errors_of(with(json!({"cpu": "0"}))),
            ["cpu: must be greater than zero"]
        );
        let mut ok = service(with(json!({"cpu": 1.5, "memory": "1Gi"})));
        prepare(&mut ok).unwrap();
        assert_eq!(ok.cpu, "1.5");
    }

    #[test]
    fn log_level_must_be_known() {
        assert!(
            errors_of(with(json!({"log_level": "verbose"})))[0]
                .starts_with("log_level: \"VERBOSE\" is not one of")
        );
    }

    #[test]
    fn environment_names_are_checked_and_secrets_do_not_shadow_variables() {
        let errors = errors_of(with(json!({"environment": {
            "variables": {"OK": "1", "1BAD": "x", "DUP": "a"},
            "secrets": {"DUP": "b"}
        }})));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("environment.variables.1BAD: is not a valid variable name"));
        assert_eq!(
            errors[1],
            "environment.secrets.DUP: is also defined in environment.variables"
        );
    }

    #[test]
    fn storage_entries_are_checked() {
        let errors = errors_of(with(json!({
            "input": [{"storage_provider": "s3", "path": "xyz/in"}, {"path": "  "}],
            "output": [{"storage_provider": "minio.other", "path": "xyz/out"}, {"path": "Bad_Bucket/out"}, {"path": "b/../c"}]
        })));
        assert_eq!(
            errors,
            [
                "input[0].storage_provider: \"s3.default\" is not declared in storage_providers.s3",
                "input[1].path: must not be empty",
                "output[0].storage_provider: \"minio.other\" is not declared in storage_providers.minio",
                "output[1].path: bucket \"Bad_Bucket\": may hold only lowercase letters, digits, '-' and '.'",
                "output[2].path: \"b/../c\" has an empty, '.' or '..' segment",
            ]
        );
    }

    #[test]
    fn providers_the_platform_cannot_reach_are_refused_at_save_time() {
        let errors = errors_of(with(json!({
            "input": [{"storage_provider": "onedata.hub", "path": "in"}],
            "output": [{"storage_provider": "rucio.r", "path": "out"}],
            "storage_providers": {
                "rucio": {"r": {"host": "h"}},
                "onedata": {"hub": {"oneprovider_host": "p", "token": "t"}},
                "webdav": {"d": {"login": "u"}},
                "minio": {"m": {"endpoint": "https://m", "verify": false}}
            }
        })));
        assert_eq!(
            errors,
            [
                "input[0].storage_provider: \"onedata.hub\" is not a supported input provider (one of: minio, s3, webdav)",
                "output[0].storage_provider: \"rucio.r\" is not a supported output provider (one of: minio, s3, onedata, webdav)",
                "storage_providers.minio.m.verify: false is not supported for S3 stores: give the store a certificate a public CA signs, or an http:// endpoint on a private network",
                "storage_providers.onedata.hub.space: must not be empty",
                "storage_providers.rucio: Rucio is not supported by this platform (one of: minio, s3, webdav, onedata)",
                "storage_providers.webdav.d.hostname: must not be empty",
            ]
        );
    }

    #[test]
    fn volumes_need_a_name_or_size_and_a_mount_path_of_their_own() {
        let errors = errors_of(with(json!({"volume": {"mount_path": "/proc/x"}})));
        assert_eq!(
            errors,
            [
                "volume: needs a size (to make a volume) or the name of an existing volume",
                "volume.mount_path: \"/proc/x\" is inside /proc, which the platform provides to jobs",
            ]
        );
        let errors = errors_of(with(json!({"volume": {
            "name": "Bad_Name", "size": "lots", "mount_path": "data/../x", "lifecycle_policy": "keep"
        }})));
        assert_eq!(errors.len(), 4, "{errors:?}");
        let mut ok = service(with(
            json!({"volume": {"size": "1Gi", "mount_path": "/data"}}),
        ));
        prepare(&mut ok).unwrap();
    }

    #[test]
    fn declared_providers_are_accepted() {
        let mut s = service(with(json!({
            "output": [{"storage_provider": "minio.other", "path": "bucket/out"}],
            "storage_providers": {"minio": {"other": {"endpoint": "https://m", "access_key": "a", "secret_key": "b"}}}
        })));
        prepare(&mut s).unwrap();
    }

    #[test]
    fn outputs_inside_an_input_folder_would_loop() {
        let errors = errors_of(with(json!({
            "input": [{"path": "data/in"}],
            "output": [{"path": "data/in/results"}, {"path": "data/inbox"}]
        })));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with(
            "output[0].path: \"data/in/results\" lies inside the input folder \"data/in\""
        ));
    }

    #[test]
    fn labels_and_annotations_use_kubernetes_rules() {
        let errors = errors_of(with(json!({
            "labels": {"example.com/name": "ok", "bad key": "v", "k": "bad value!"},
            "annotations": {"example.com/note": "anything goes here!"}
        })));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("labels.bad key: key"));
        assert!(errors[1].starts_with("labels.k: value"));
    }

    #[test]
    fn keys_of_kubernetes_and_the_platform_are_refused() {
        let errors = errors_of(with(json!({
            "labels": {
                "app.kubernetes.io/managed-by": "oscar",
                "kueue.x-k8s.io/queue-name": "someone-elses-queue",
                "oscar.grycap/job": "someone-elses",
                "oscar.grycap/mount": "true",
                "team": "vision"
            },
            "annotations": {
                "container.apparmor.security.beta.kubernetes.io/oscar-container": "unconfined",
                "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
                "node.k8s.io/x": "y",
                "io.kubernetes.cri-o.Devices": "/dev/fuse",
                "sidecar.istio.io/inject": "false"
            }
        })));
        let fields: Vec<&str> = errors
            .iter()
            .map(|e| e.split(':').next().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "labels.app.kubernetes.io/managed-by",
                "labels.kueue.x-k8s.io/queue-name",
                "labels.oscar.grycap/job",
                "labels.oscar.grycap/mount",
                "annotations.container.apparmor.security.beta.kubernetes.io/oscar-container",
                "annotations.io.kubernetes.cri-o.Devices",
                "annotations.node.k8s.io/x",
                "annotations.seccomp.security.alpha.kubernetes.io/pod",
            ]
        );
        assert!(errors[0].contains("is reserved"), "{errors:?}");
        // Lookalikes outside those domains are the service's.
        for key in [
            "notkubernetes.io/x",
            "kubernetes.io.example.com/x",
            "example.com/k8s.io",
        ] {
            assert!(!is_reserved_key(key), "{key}");
        }
    }

    /// What upstream's API returns of a service (its own labels included) can be sent back.
    #[test]
    fn upstreams_labels_are_accepted() {
        let upstream = include_str!("../../../fixtures/oscar/service.json");
        let value: serde_json::Value = serde_json::from_str(upstream).unwrap();
        let labels = &value["labels"];
        let mut s = service(with(json!({ "labels": labels })));
        prepare(&mut s).unwrap();
        assert!(
            labels
                .as_object()
                .unwrap()
                .keys()
                .all(|k| s.labels.contains_key(k))
        );
    }

    #[test]
    fn the_service_label_is_always_the_services_name() {
        let mut s = service(with(json!({"labels": {SERVICE_LABEL: "copied-from"}})));
        prepare(&mut s).unwrap();
        assert_eq!(s.labels[SERVICE_LABEL], "grayify");
    }

    #[test]
    fn synchronous_scale_bounds() {
        assert_eq!(
            errors_of(with(
                json!({"synchronous": {"min_scale": 3, "max_scale": 2}})
            )),
            ["synchronous.min_scale: must not exceed max_scale (2)"]
        );
        assert_eq!(
            errors_of(with(json!({"synchronous": {"min_scale": 1000000}}))),
            ["synchronous.min_scale: must be at most 100"]
        );
    }

    #[test]
    fn inactive_fields_must_have_their_shape() {
        assert_eq!(
            errors_of(with(json!({"mount": "yes"}))),
            ["mount: must be an object"]
        );
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(bucket_name("my-bucket.1").is_ok());
        for bad in [
            "ab",
            "UPPER",
            "-start",
            "end-",
            "a..b",
            "192.168.1.1",
            &"x".repeat(64),
        ] {
            assert!(bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn several_validation_errors_become_one_400_naming_the_first_field() {
        let err = crate::AppError::from(vec![
            FieldError {
                field: "name".into(),
                message: "is required".into(),
            },
            FieldError {
                field: "image".into(),
                message: "is required".into(),
            },
        ]);
        assert_eq!(
            err,
            crate::AppError::bad_request("name", "is required (and 1 more)")
        );
    }
}
