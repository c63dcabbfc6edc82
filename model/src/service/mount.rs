//! OSCAR's `mount`: a folder of a storage provider that every job and instance (an exposed
//! service's, a warm worker) of the service sees, read-write, at `/mnt/<path>` (upstream's
//! rclone sidecar). Reads and writes go through the provider as any client's would, so its
//! permissions, quotas and notifications hold for them too.

use serde::{Deserialize, Serialize};

use super::Service;
use super::validate::{bucket_name, declares_provider, has_odd_segment, is_builtin_provider};

/// Where mounts are seen: `/mnt/<path>`.
pub const MOUNT_ROOT: &str = "/mnt";

/// The provider kinds that can be mounted (rclone has no Onedata backend).
const MOUNTABLE: &[&str] = &["minio", "s3", "webdav"];

/// rclone mount flags a service may add, with the values each takes (`None`: a switch). None
/// names a file, a host or a command, and none turns on rclone's file cache: unmounted, rclone
/// would drop the uploads it holds, and its copies would fill the server's disk.
const OPTIONS: &[(&str, Option<OptionValue>)] = &[
    ("--read-only", None),
    ("--no-modtime", None),
    ("--no-checksum", None),
    ("--dir-cache-time", Some(OptionValue::Duration)),
    ("--poll-interval", Some(OptionValue::Duration)),
    ("--attr-timeout", Some(OptionValue::Duration)),
    ("--vfs-read-chunk-size", Some(OptionValue::Size)),
    ("--buffer-size", Some(OptionValue::Size)),
];

#[derive(Debug, Clone, Copy)]
enum OptionValue {
    Duration,
    Size,
}

impl OptionValue {
    fn accepts(self, value: &str) -> bool {
        match self {
            // `10s`, `1m30s`, `2h`; `16M`, `1G`, `512k`.
            Self::Duration => {
                !value.is_empty()
                    && value
                        .chars()
                        .all(|c| c.is_ascii_digit() || "smhd.".contains(c))
                    && value.starts_with(|c: char| c.is_ascii_digit())
            }
            Self::Size => {
                let digits = value.trim_end_matches(['k', 'K', 'M', 'G', 'T']);
                !digits.is_empty()
                    && digits.len() + 1 >= value.len()
                    && digits.chars().all(|c| c.is_ascii_digit())
            }
        }
    }
}

/// A service's `mount`, as its definition says it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mount {
    /// `<type>.<id>`; a bare type means `<type>.default`.
    pub storage_provider: String,
    /// `bucket/folder…` (S3 stores) or a folder of the server (WebDAV).
    pub path: String,
    /// rclone flags from [`OPTIONS`], separated by spaces or commas.
    pub options: String,
}

impl Mount {
    /// The service's mount, when it declares one (`validate` has checked its shape).
    pub fn of(service: &Service) -> Option<Self> {
        let value = service.inactive.get("mount")?;
        let mount: Self = serde_json::from_value(value.clone()).ok()?;
        (!mount.storage_provider.trim().is_empty() || !mount.path.trim().is_empty())
            .then_some(mount)
    }

    /// The service's mount when it runs instances (an exposed service's, warm workers), which
    /// mount it for as long as they run.
    pub fn of_instances(service: &Service) -> Option<Self> {
        Self::of(service).filter(|_| service.runs_instances())
    }

    /// The provider id, `minio.default` for `minio`.
    pub fn provider(&self) -> String {
        match self.storage_provider.trim() {
            p if p.contains('.') => p.to_string(),
            p => format!("{p}.default"),
        }
    }

    /// The provider's kind: `minio`, `s3` or `webdav`.
    pub fn kind(&self) -> String {
        let provider = self.provider();
        provider.split('.').next().unwrap_or_default().to_string()
    }

    /// The folder, without surrounding spaces and slashes.
    pub fn folder(&self) -> &str {
        self.path.trim().trim_matches('/')
    }

    /// Where jobs see it: `/mnt/<path>`.
    pub fn seen_at(&self) -> String {
        format!("{MOUNT_ROOT}/{}", self.folder())
    }

    /// Its bucket in the platform's store, when it mounts one.
    pub fn platform_bucket(&self) -> Option<&str> {
        (self.provider() == super::PLATFORM_STORE)
            .then(|| self.folder().split('/').next().unwrap_or_default())
    }

    /// The rclone flags it adds.
    pub fn flags(&self) -> Vec<String> {
        self.options
            .split([' ', ','])
            .filter(|flag| !flag.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// What is wrong with the service's `mount`, by field.
pub fn errors(service: &Service) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    // Not an object: said by the shape check of every such field.
    let Some(value) = service.inactive.get("mount").filter(|v| v.is_object()) else {
        return errors;
    };
    let Ok(mount) = serde_json::from_value::<Mount>(value.clone()) else {
        errors.push((
            "mount".into(),
            "must be {storage_provider, path, options?} with text values".into(),
        ));
        return errors;
    };
    if Mount::of(service).is_none() {
        return errors;
    }
    let provider = mount.provider();
    let (kind, id) = provider.split_once('.').unwrap_or_default();
    if !MOUNTABLE.contains(&kind) {
        errors.push((
            "mount.storage_provider".into(),
            format!(
                "{provider:?} cannot be mounted (one of: {})",
                MOUNTABLE.join(", ")
            ),
        ));
    } else if !is_builtin_provider(kind, id) && !declares_provider(service, kind, id) {
        errors.push((
            "mount.storage_provider".into(),
            format!("{provider:?} is not declared in storage_providers.{kind}"),
        ));
    }
    // Its mount point would hide the mount, or be made inside the provider's folder.
    if let Some(volume) = crate::volumes::ServiceVolume::of(service) {
        let path = volume.mount_path.trim_end_matches('/');
        if path == MOUNT_ROOT || path.starts_with(&format!("{MOUNT_ROOT}/")) {
            errors.push((
                "volume.mount_path".into(),
                format!("{path:?} is inside {MOUNT_ROOT}, where the service's mount is"),
            ));
        }
    }
    let folder = mount.folder();
    if folder.is_empty() {
        errors.push(("mount.path".into(), "must not be empty".into()));
    } else if has_odd_segment(folder) {
        errors.push((
            "mount.path".into(),
            format!("{folder:?} has an empty, '.' or '..' segment"),
        ));
    } else if kind == "minio" || kind == "s3" {
        let bucket = folder.split('/').next().unwrap_or_default();
        if let Err(why) = bucket_name(bucket) {
            errors.push(("mount.path".into(), format!("bucket {bucket:?}: {why}")));
        }
    }
    if folder.chars().any(char::is_control) {
        errors.push((
            "mount.path".into(),
            "must not contain control characters".into(),
        ));
    }
    for flag in mount.flags() {
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (flag.as_str(), None),
        };
        let allowed = OPTIONS.iter().find(|(known, _)| *known == name);
        let fits = match (allowed, value) {
            (Some((_, None)), None) => true,
            (Some((_, Some(kind))), Some(value)) => kind.accepts(value),
            _ => false,
        };
        if !fits {
            let known: Vec<_> = OPTIONS
                .iter()
                .map(|(name, value)| match value {
                    Some(_) => format!("{name}=…"),
                    None => name.to_string(),
                })
                .collect();
            errors.push((
                "mount.options".into(),
                format!(
                    "{flag:?} is not a mount option (one of: {})",
                    known.join(" ")
                ),
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(mount: serde_json::Value) -> Service {
        Service::from_json(
            json!({"name": "m", "image": "i", "script": "s", "mount": mount,
            "storage_providers": {"webdav": {"dcache": {"hostname": "dav.example"}}}}),
        )
        .unwrap()
    }

    fn fields(mount: serde_json::Value) -> Vec<String> {
        errors(&service(mount))
            .into_iter()
            .map(|(field, message)| format!("{field}: {message}"))
            .collect()
    }

    #[test]
    fn a_mount_names_a_folder_of_a_provider_seen_under_mnt() {
        let mount = Mount::of(&service(
            json!({"storage_provider": "minio", "path": " /data/in/ ", "options": "--read-only"}),
        ))
        .unwrap();
        assert_eq!(mount.provider(), "minio.default");
        assert_eq!(mount.seen_at(), "/mnt/data/in");
        assert_eq!(mount.platform_bucket(), Some("data"));
        assert_eq!(mount.flags(), ["--read-only"]);
        let dav = Mount::of(&service(
            json!({"storage_provider": "webdav.dcache", "path": "x"}),
        ))
        .unwrap();
        assert_eq!(dav.platform_bucket(), None);
        assert!(fields(json!({"storage_provider": "webdav.dcache", "path": "x"})).is_empty());
        assert!(Mount::of(&service(json!({}))).is_none());
    }

    #[test]
    fn mounts_the_platform_cannot_make_are_refused_by_field() {
        assert_eq!(
            fields(json!({"storage_provider": "onedata.x", "path": "data"})),
            [
                r#"mount.storage_provider: "onedata.x" cannot be mounted (one of: minio, s3, webdav)"#
            ]
        );
        assert_eq!(
            fields(json!({"storage_provider": "s3.aws", "path": "data"})),
            [r#"mount.storage_provider: "s3.aws" is not declared in storage_providers.s3"#]
        );
        // `..` would lead out of /mnt in the sandbox.
        assert_eq!(
            fields(json!({"storage_provider": "minio", "path": "data/../../etc"})),
            [r#"mount.path: "data/../../etc" has an empty, '.' or '..' segment"#]
        );
        assert_eq!(
            fields(json!({"storage_provider": "minio", "path": "Bad_Bucket"})),
            [
                r#"mount.path: bucket "Bad_Bucket": may hold only lowercase letters, digits, '-' and '.'"#
            ]
        );
        assert_eq!(
            fields(json!({"storage_provider": "minio", "path": ""})),
            ["mount.path: must not be empty"]
        );
        assert_eq!(fields(json!({"path": 1})).len(), 1);
        let mut both = service(json!({"storage_provider": "minio", "path": "data"}));
        both.inactive.insert(
            "volume".into(),
            json!({"size": "1Gi", "mount_path": "/mnt/data"}),
        );
        assert_eq!(
            errors(&both),
            [(
                "volume.mount_path".to_string(),
                r#""/mnt/data" is inside /mnt, where the service's mount is"#.to_string()
            )]
        );
    }

    #[test]
    fn only_caching_options_are_taken() {
        let ok = json!({"storage_provider": "minio", "path": "data",
            "options": "--read-only, --dir-cache-time=10s --buffer-size=16M --no-modtime"});
        assert!(fields(ok).is_empty());
        for bad in [
            "--config=/etc/passwd",
            "--vfs-cache-mode=writes",
            "--dir-cache-time=$(id)",
            "--read-only=yes",
            "--buffer-size",
            "-o allow_other",
        ] {
            let errors =
                fields(json!({"storage_provider": "minio", "path": "data", "options": bad}));
            assert!(
                !errors.is_empty() && errors.iter().all(|e| e.starts_with("mount.options: ")),
                "{bad}: {errors:?}"
            );
        }
    }
}
