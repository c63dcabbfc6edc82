//! Upstream's JSON field order for the service object, so answers read as upstream's do:
//! clients and scripts compare the text (`"mount":{"storage_provider":…,"path":…}`). The
//! tables follow the Go structs of grycap/oscar `pkg/types` (`service.go`, `storage.go`,
//! `expose` in `service.go`, `federation.go`, `replica.go`, `cluster.go`); keys they do not
//! list (older FDLs' `replicas`, …) follow, sorted.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// How the keys of a JSON value are ordered.
pub enum Order {
    /// An object with these keys first, in this order, each ordered by its own `Order`.
    Keys(&'static [(&'static str, &'static Order)]),
    /// A list whose items are ordered alike.
    Items(&'static Order),
    /// A map (keys sorted, as Go writes maps) whose values are ordered alike.
    Values(&'static Order),
    /// Written as it is.
    Any,
}

use Order::{Any, Items, Keys, Values};

/// `value` written with its keys in `order`.
pub struct InOrder<'a>(pub &'a Value, pub &'a Order);

impl Serialize for InOrder<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match (self.0, self.1) {
            (Value::Object(object), Keys(keys)) => {
                let mut map = serializer.serialize_map(Some(object.len()))?;
                for (key, order) in *keys {
                    if let Some(value) = object.get(*key) {
                        map.serialize_entry(key, &InOrder(value, order))?;
                    }
                }
                for (key, value) in object {
                    if !keys.iter().any(|(known, _)| known == key) {
                        map.serialize_entry(key, value)?;
                    }
                }
                map.end()
            }
            (Value::Object(object), Values(order)) => {
                serializer.collect_map(object.iter().map(|(k, v)| (k, InOrder(v, order))))
            }
            (Value::Array(items), Items(order)) => {
                serializer.collect_seq(items.iter().map(|item| InOrder(item, order)))
            }
            (value, _) => value.serialize(serializer),
        }
    }
}

/// `StorageIOConfig`: inputs, outputs and the mount.
static STORAGE_IO: Order = Keys(&[
    ("storage_provider", &Any),
    ("path", &Any),
    ("suffix", &Any),
    ("prefix", &Any),
    ("options", &Any),
]);

static REPLICA: Order = Keys(&[
    ("type", &Any),
    ("cluster_id", &Any),
    ("service_name", &Any),
    ("url", &Any),
    ("ssl_verify", &Any),
    ("priority", &Any),
    ("headers", &Any),
]);

static STORAGE_PROVIDERS: Order = Keys(&[
    (
        "s3",
        &Values(&Keys(&[
            ("access_key", &Any),
            ("secret_key", &Any),
            ("region", &Any),
        ])),
    ),
    (
        "minio",
        &Values(&Keys(&[
            ("endpoint", &Any),
            ("verify", &Any),
            ("access_key", &Any),
            ("secret_key", &Any),
            ("region", &Any),
        ])),
    ),
    (
        "onedata",
        &Values(&Keys(&[
            ("oneprovider_host", &Any),
            ("token", &Any),
            ("space", &Any),
        ])),
    ),
    (
        "webdav",
        &Values(&Keys(&[
            ("hostname", &Any),
            ("login", &Any),
            ("password", &Any),
        ])),
    ),
    (
        "rucio",
        &Values(&Keys(&[
            ("host", &Any),
            ("account", &Any),
            ("rse", &Any),
            ("refresh_token", &Any),
            ("auth_host", &Any),
            ("oidc_audience", &Any),
            ("token_endpoint", &Any),
        ])),
    ),
]);

/// `Service`.
pub static SERVICE: Order = Keys(&[
    ("name", &Any),
    ("cluster_id", &Any),
    ("memory", &Any),
    ("cpu", &Any),
    ("total_memory", &Any),
    ("total_cpu", &Any),
    ("ephemeral_storage_request", &Any),
    ("enable_gpu", &Any),
    ("enable_sgx", &Any),
    ("image_prefetch", &Any),
    (
        "synchronous",
        &Keys(&[("min_scale", &Any), ("max_scale", &Any)]),
    ),
    (
        "federation",
        &Keys(&[
            ("group_id", &Any),
            ("topology", &Any),
            ("delegation", &Any),
            ("rescheduler_threshold", &Any),
            ("members", &Items(&REPLICA)),
        ]),
    ),
    ("log_level", &Any),
    ("image", &Any),
    ("alpine", &Any),
    ("token", &Any),
    ("file_stage_in", &Any),
    ("input", &Items(&STORAGE_IO)),
    ("output", &Items(&STORAGE_IO)),
    ("script", &Any),
    ("image_pull_secrets", &Any),
    (
        "expose",
        &Keys(&[
            ("min_scale", &Any),
            ("max_scale", &Any),
            ("api_port", &Any),
            ("cpu_threshold", &Any),
            ("rewrite_target", &Any),
            ("nodePort", &Any),
            ("default_command", &Any),
            ("set_auth", &Any),
            ("auth_type", &Any),
            ("health_path", &Any),
            ("probe_mode", &Any),
        ]),
    ),
    (
        "environment",
        &Keys(&[("variables", &Any), ("secrets", &Any)]),
    ),
    ("annotations", &Any),
    ("vo", &Any),
    ("labels", &Any),
    ("storage_providers", &STORAGE_PROVIDERS),
    (
        "clusters",
        &Values(&Keys(&[
            ("endpoint", &Any),
            ("auth_user", &Any),
            ("auth_password", &Any),
            ("ssl_verify", &Any),
        ])),
    ),
    ("owner", &Any),
    ("interlink_node_name", &Any),
    ("visibility", &Any),
    ("allowed_users", &Any),
    ("isolation_level", &Any),
    ("bucket_list", &Any),
    ("mount", &STORAGE_IO),
    (
        "volume",
        &Keys(&[
            ("name", &Any),
            ("size", &Any),
            ("mount_path", &Any),
            ("lifecycle_policy", &Any),
        ]),
    ),
    (
        "kserve",
        &Keys(&[
            ("type", &Any),
            (
                "inference",
                &Keys(&[("model_format", &Any), ("runtime", &Any)]),
            ),
            ("llm_inference", &Keys(&[("runtime_image", &Any)])),
            ("storage_uri", &Any),
            ("api_version", &Any),
            ("min_scale", &Any),
            ("max_scale", &Any),
            ("cpu", &Any),
            ("memory", &Any),
            ("args", &Any),
            ("env", &Any),
            ("enable_gpu", &Any),
            ("set_auth", &Any),
        ]),
    ),
]);
