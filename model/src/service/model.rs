//! The OSCAR service object, with OSCAR's JSON field names (oscar-api.md §4.2), so the official
//! clients' JSON round-trips unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::expose::Expose;
use super::order::{self, InOrder};

/// An OSCAR service: upstream's FDL service as JSON. Fields upstream has and this platform does
/// not act on yet are kept as given.
// Written in upstream's field order (see `Serialize` below); `remote = "Self"` makes the
// derives plain functions the trait impls call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, remote = "Self")]
pub struct Service {
    pub name: String,
    pub cluster_id: String,
    pub image: String,
    pub script: String,
    #[serde(deserialize_with = "string_or_number")]
    pub cpu: String,
    #[serde(deserialize_with = "string_or_number")]
    pub memory: String,
    pub ephemeral_storage_request: String,
    pub enable_gpu: bool,
    pub log_level: String,
    pub alpine: bool,
    pub file_stage_in: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,
    pub environment: Environment,
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub input: Vec<StorageIo>,
    pub output: Vec<StorageIo>,
    pub vo: String,
    pub visibility: Visibility,
    pub allowed_users: Vec<String>,
    pub synchronous: Synchronous,
    /// A long-running HTTP server instead of one job per event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expose: Option<Expose>,
    /// Set by the server: `cluster_admin` for the local admin, the OIDC `sub` otherwise.
    pub owner: String,
    /// 64 hex characters; generated on create, kept on update.
    pub token: String,
    /// Fields this platform stores and returns but does not act on yet (see `INACTIVE_FIELDS`).
    #[serde(flatten)]
    pub inactive: BTreeMap<String, Value>,
}

/// In upstream's field order, nested objects too: clients and scripts compare the text.
impl Serialize for Service {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = Self::serialize(self, serde_json::value::Serializer)
            .map_err(serde::ser::Error::custom)?;
        InOrder(&value, &order::SERVICE).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Service {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::deserialize(deserializer)
    }
}

/// Kept as sent (validated, stored and returned unchanged as JSON): the features that act on
/// some of them read them from there ([`ACTED_ON`]); the others are inactive.
pub const INACTIVE_FIELDS: &[&str] = &[
    "enable_sgx",
    "image_prefetch",
    "total_cpu",
    "total_memory",
    "mount",
    "volume",
    "federation",
    "kserve",
    "replicas",
    "delegation",
    "rescheduler_threshold",
    "isolation_level",
    "bucket_list",
    "interlink_node_name",
    "storage_providers",
    "clusters",
];

/// The fields of [`INACTIVE_FIELDS`] the platform acts on: storage providers, mounts, managed
/// volumes and federation read them from the stored definition.
pub const ACTED_ON: &[&str] = &[
    "storage_providers",
    "mount",
    "volume",
    "federation",
    "replicas",
    "delegation",
    "rescheduler_threshold",
    "clusters",
];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Environment {
    pub variables: BTreeMap<String, String>,
    /// Write-only: stored apart, never returned or logged.
    pub secrets: BTreeMap<String, String>,
}

/// Upstream's `StorageIOConfig`, empty filters left out as upstream does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct StorageIo {
    /// `<type>.<id>`, e.g. `minio.default`; a bare type means `<type>.default`.
    pub storage_provider: String,
    /// `bucket/folder…`
    pub path: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suffix: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<String>,
}

/// The label upstream gives every service (and its jobs): its name. Clients and scripts
/// filter services on it.
pub const SERVICE_LABEL: &str = "oscar_service";
/// Label naming the job: what the platform's watch keys on.
pub const JOB_LABEL: &str = "oscar.grycap/job";
/// Label of instances' pods with a mount, which a NetworkPolicy lets reach the store.
pub const MOUNT_LABEL: &str = "oscar.grycap/mount";
/// Annotation with the owner's full id (labels cannot hold every id).
pub const OWNER_ANNOTATION: &str = "oscar.grycap/owner";

/// The provider id of the platform's own store (what an entry without a provider means).
pub const PLATFORM_STORE: &str = "minio.default";

impl StorageIo {
    /// Whether the entry is in the platform's own store (prepared entries always name their
    /// provider).
    pub fn in_platform_store(&self) -> bool {
        self.storage_provider == PLATFORM_STORE
    }

    /// `bucket/folder/sub` → (`bucket`, `folder/sub`); `bucket` → (`bucket`, ``).
    pub fn bucket_and_folder(&self) -> (&str, &str) {
        let path = self.path.trim_matches('/');
        path.split_once('/').unwrap_or((path, ""))
    }

    /// The listing prefix of the folder: `folder/`, or `` for a whole bucket.
    pub fn folder_prefix(&self) -> String {
        match self.bucket_and_folder().1 {
            "" => String::new(),
            folder => format!("{folder}/"),
        }
    }

    /// The key relative to this entry's folder, when `bucket/key` is inside it (at any depth).
    pub fn relative_key<'k>(&self, bucket: &str, key: &'k str) -> Option<&'k str> {
        let (own_bucket, _) = self.bucket_and_folder();
        (own_bucket == bucket).then(|| key.strip_prefix(&self.folder_prefix()))?
    }

    /// Whether a path relative to the folder passes the prefix and suffix filters.
    pub fn accepts(&self, relative: &str) -> bool {
        (self.prefix.is_empty() || self.prefix.iter().any(|p| relative.starts_with(p.as_str())))
            && (self.suffix.is_empty()
                || self.suffix.iter().any(|s| relative.ends_with(s.as_str())))
    }

    /// The key of a file uploaded under this entry's folder.
    pub fn key_for(&self, relative: &str) -> String {
        match self.bucket_and_folder().1 {
            "" => relative.to_string(),
            folder => format!("{folder}/{relative}"),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Private,
    Restricted,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Restricted => "restricted",
            Self::Public => "public",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Private, Self::Restricted, Self::Public]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Synchronous {
    pub min_scale: u32,
    /// 0 means unlimited.
    pub max_scale: u32,
}

impl Service {
    /// Parses the OSCAR service JSON the way upstream's Go decoder does: keys of the service's
    /// own fields match case-insensitively, unknown keys are ignored.
    pub fn from_json(mut value: Value) -> Result<Self, String> {
        canonical_keys(&mut value);
        // The field at fault first: `expose: invalid type…`.
        serde_path_to_error::deserialize(value).map_err(|e| match e.path().to_string() {
            path if path == "." => e.into_inner().to_string(),
            path => format!("{path}: {}", e.into_inner()),
        })
    }

    /// Whether it is an exposed service: its `expose` block names a port.
    pub fn is_exposed(&self) -> bool {
        self.expose.as_ref().is_some_and(|e| e.port().is_some())
    }

    /// Whether it runs long-lived instances beside jobs: an exposed service's, or warm workers
    /// (`synchronous.min_scale`).
    pub fn runs_instances(&self) -> bool {
        self.is_exposed() || self.synchronous.min_scale > 0
    }

    /// The fields of [`INACTIVE_FIELDS`] this service sets (to something not empty).
    pub fn inactive_fields_set(&self) -> Vec<&str> {
        self.inactive
            .iter()
            .filter(|(_, v)| !is_empty_value(v))
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// What it sets that this platform does not act on, for "not active here yet" notes.
    pub fn unused_fields_set(&self) -> Vec<&str> {
        self.inactive_fields_set()
            .into_iter()
            .filter(|field| !ACTED_ON.contains(field))
            .collect()
    }
}

/// Null, false, zero, or an empty string, list or object (recursively).
pub(crate) fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty_value),
    }
}

const SERVICE_KEYS: &[&str] = &[
    "name",
    "cluster_id",
    "image",
    "script",
    "cpu",
    "memory",
    "ephemeral_storage_request",
    "enable_gpu",
    "log_level",
    "alpine",
    "file_stage_in",
    "image_pull_secrets",
    "environment",
    "annotations",
    "labels",
    "input",
    "output",
    "vo",
    "visibility",
    "allowed_users",
    "synchronous",
    "expose",
    "owner",
    "token",
];
const ENVIRONMENT_KEYS: &[&str] = &["variables", "secrets"];
const STORAGE_IO_KEYS: &[&str] = &["storage_provider", "path", "prefix", "suffix"];
const SYNCHRONOUS_KEYS: &[&str] = &["min_scale", "max_scale"];
const EXPOSE_KEYS: &[&str] = &[
    "min_scale",
    "max_scale",
    "api_port",
    "cpu_threshold",
    "rewrite_target",
    "nodePort",
    "default_command",
    "set_auth",
    "auth_type",
    "health_path",
    "probe_mode",
];

/// Renames keys to their canonical spelling (`Environment.Variables` → `environment.variables`)
/// on the service and its nested objects; the keys of maps (variable names, labels) keep theirs.
/// Unknown top-level keys are dropped unless they are inactive fields.
fn canonical_keys(value: &mut Value) {
    let Value::Object(service) = value else {
        return;
    };
    let mut known = SERVICE_KEYS.to_vec();
    known.extend_from_slice(INACTIVE_FIELDS);
    rename_keys(service, &known);
    service.retain(|k, _| known.contains(&k.as_str()));
    if let Some(Value::Object(env)) = service.get_mut("environment") {
        rename_keys(env, ENVIRONMENT_KEYS);
    }
    if let Some(Value::Object(sync)) = service.get_mut("synchronous") {
        rename_keys(sync, SYNCHRONOUS_KEYS);
    }
    if let Some(Value::Object(expose)) = service.get_mut("expose") {
        rename_keys(expose, EXPOSE_KEYS);
    }
    for list in ["input", "output"] {
        if let Some(Value::Array(items)) = service.get_mut(list) {
            for item in items.iter_mut() {
                if let Value::Object(io) = item {
                    rename_keys(io, STORAGE_IO_KEYS);
                }
            }
        }
    }
}

fn rename_keys(object: &mut serde_json::Map<String, Value>, canonical: &[&str]) {
    let renames: Vec<(String, &str)> = object
        .keys()
        .filter_map(|key| {
            canonical
                .iter()
                .find(|c| c.eq_ignore_ascii_case(key) && **c != key)
                .map(|c| (key.clone(), *c))
        })
        .collect();
    for (from, to) in renames {
        if let Some(v) = object.remove(&from) {
            object.entry(to.to_string()).or_insert(v);
        }
    }
}

/// Upstream rejects `cpu: 1` (a number); clients send both, so accept both.
fn string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or a number, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_match_case_insensitively_but_map_keys_keep_their_case() {
        let service = Service::from_json(json!({
            "Name": "cowsay",
            "IMAGE": "ghcr.io/grycap/cowsay",
            "script": "echo hi",
            "environment": {"Variables": {"MyVar": "1"}},
            "input": [{"Storage_Provider": "minio", "Path": "in"}],
            "unknown_field": 3
        }))
        .unwrap();
        assert_eq!(service.name, "cowsay");
        assert_eq!(service.image, "ghcr.io/grycap/cowsay");
        assert_eq!(service.environment.variables["MyVar"], "1");
        assert_eq!(service.input[0].storage_provider, "minio");
        assert!(
            service.inactive.is_empty(),
            "unknown keys are ignored: {:?}",
            service.inactive
        );
    }

    #[test]
    fn cpu_and_memory_may_be_numbers() {
        let service = Service::from_json(json!({"cpu": 1, "memory": "1Gi"})).unwrap();
        assert_eq!(
            (service.cpu.as_str(), service.memory.as_str()),
            ("1", "1Gi")
        );
    }

    #[test]
    fn inactive_fields_round_trip_unchanged() {
        let mount = json!({"storage_provider": "webdav.dcache", "path": "data"});
        let service = Service::from_json(json!({"name": "web", "mount": mount.clone()})).unwrap();
        assert_eq!(service.inactive_fields_set(), ["mount"]);
        let federated = Service::from_json(json!({"name": "f", "mount": mount.clone(),
            "federation": {"topology": "star"}, "volume": {"size": "1Gi"}}))
        .unwrap();
        assert!(federated.unused_fields_set().is_empty());
        let kserve = Service::from_json(json!({"name": "k", "kserve": {"type": "inference"}}));
        assert_eq!(kserve.unwrap().unused_fields_set(), ["kserve"]);
        let back = serde_json::to_value(&service).unwrap();
        assert_eq!(back["mount"], mount);
    }

    #[test]
    fn expose_is_typed_with_upstreams_spelling() {
        let service = Service::from_json(json!({
            "name": "web", "Expose": {"API_PORT": 8080, "NodePort": 30080, "set_auth": true}
        }))
        .unwrap();
        let expose = service.expose.clone().unwrap();
        assert_eq!((expose.port(), expose.node_port), (Some(8080), 30080));
        assert!(service.inactive_fields_set().is_empty());
        let back = serde_json::to_value(&service).unwrap();
        assert_eq!(back["expose"]["api_port"], json!([8080]));
        assert_eq!(back["expose"]["nodePort"], 30080);
        let plain = serde_json::to_value(Service::from_json(json!({"name": "a"})).unwrap());
        assert!(plain.unwrap().get("expose").is_none());
    }

    /// Upstream's JSON of a service (every field this platform keeps) reads and writes back
    /// to the same text: upstream's field order, nested objects and `omitempty` included.
    #[test]
    fn serialises_in_upstreams_field_order() {
        let upstream = include_str!("../../../fixtures/oscar/service.json");
        let service = Service::from_json(serde_json::from_str(upstream).unwrap()).unwrap();
        let text = serde_json::to_string_pretty(&service).unwrap() + "\n";
        assert_eq!(text, upstream);
    }

    #[test]
    fn wrong_types_are_reported_with_their_field() {
        let err = Service::from_json(json!({"enable_gpu": "yes"})).unwrap_err();
        assert!(err.starts_with("enable_gpu: invalid type"), "{err}");
        let err = Service::from_json(json!({"expose": {"api_port": [80, "x"]}})).unwrap_err();
        assert!(err.starts_with("expose.api_port: "), "{err}");
    }
}
