//! What the supervisor reads from `function_config.yaml` (oscar-api.md §6.3 step 2): the
//! service's inputs, outputs and storage providers, nothing else.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::service::StorageIo;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FunctionConfig {
    pub name: String,
    pub input: Vec<StorageIo>,
    pub output: Vec<StorageIo>,
    /// `{minio: {default: {endpoint, region, ...}}, s3: {...}}`; credentials are not here for
    /// `minio.default` (they come from the mounted secret directory).
    pub storage_providers: BTreeMap<String, BTreeMap<String, Provider>>,
    pub log_level: String,
    pub file_stage_in: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Provider {
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub verify: Option<bool>,
    /// Fields of providers the supervisor does not use.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl Provider {
    /// A field by its FDL name, typed here or not (`hostname`, `token`, …); empty when absent.
    pub fn field(&self, name: &str) -> &str {
        match name {
            "endpoint" => &self.endpoint,
            "region" => &self.region,
            "access_key" => &self.access_key,
            "secret_key" => &self.secret_key,
            _ => self
                .other
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default(),
        }
    }

    /// Sets a field by its FDL name: how the platform puts back a credential it stores apart.
    pub fn set_field(&mut self, name: &str, value: String) {
        match name {
            "endpoint" => self.endpoint = value,
            "region" => self.region = value,
            "access_key" => self.access_key = value,
            "secret_key" => self.secret_key = value,
            _ => {
                self.other.insert(name.to_string(), Value::String(value));
            }
        }
    }
}

impl FunctionConfig {
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_norway::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", path.display()))
    }

    /// The provider entry an id like `minio.default` names.
    pub fn provider(&self, id: &str) -> Option<&Provider> {
        let (kind, name) = id.split_once('.').unwrap_or((id, "default"));
        self.storage_providers.get(kind)?.get(name)
    }

    /// Silent unless asked: CRITICAL keeps supervisor lines out of the job log (and the
    /// response), as upstream.
    pub fn quiet(&self) -> bool {
        self.log_level.eq_ignore_ascii_case("CRITICAL")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(path: &str, prefix: &[&str], suffix: &[&str]) -> StorageIo {
        StorageIo {
            storage_provider: "minio.default".into(),
            path: path.into(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            suffix: suffix.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn outputs_filter_and_place_files_like_upstream() {
        let images = io("b/out", &[], &[".png"]);
        let logs = io("b/logs/", &[], &[".txt"]);
        assert!(images.accepts("a.png") && !images.accepts("x/r.txt"));
        assert!(logs.accepts("x/r.txt"));
        assert_eq!(images.key_for("a.png"), "out/a.png");
        assert_eq!(logs.key_for("x/r.txt"), "logs/x/r.txt");
        assert_eq!(io("b", &[], &[]).key_for("a"), "a");
        assert!(io("b", &["x/"], &[]).accepts("x/r.txt"));
        assert!(!io("b", &["x/"], &[]).accepts("r.txt"));
    }

    #[test]
    fn the_config_file_is_read_with_its_providers() {
        let yaml = "name: s\ninput:\n- storage_provider: minio.default\n  path: b/in\noutput: []\nstorage_providers:\n  minio:\n    default:\n      endpoint: http://x\n      region: us-east-1\nscript: ''\n";
        let config: FunctionConfig = serde_norway::from_str(yaml).unwrap();
        assert_eq!(config.input[0].bucket_and_folder(), ("b", "in"));
        assert_eq!(
            config.provider("minio.default").unwrap().endpoint,
            "http://x"
        );
        assert_eq!(config.provider("minio").unwrap().endpoint, "http://x");
        assert!(config.provider("s3.aws").is_none());
    }
}
