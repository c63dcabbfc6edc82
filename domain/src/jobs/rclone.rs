//! A service's `mount` in embedded mode: rclone mounts the provider's folder (FUSE) on the
//! host, outside the job's sandbox, which binds it at `/mnt/<path>`. Reads and writes reach
//! the provider as any client's: through its permissions, quotas and notifications. As
//! upstream's, files are streamed (no local copy): a file the job writes is uploaded as it
//! is written, saved when closed; the job ends only once rclone is done.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use std::collections::BTreeMap;

use model::function::config::FunctionConfig;
use model::service::Service;
use model::service::mount::Mount;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use super::executor::{StorageAccess, function_config};
use super::sandbox::find_program;

/// How long rclone may take to mount.
const MOUNT_WITHIN: Duration = Duration::from_secs(15);
/// How long the files a job wrote may take to upload once it ended.
const UPLOAD_WITHIN: Duration = Duration::from_secs(600);
/// How long the processes of a job that ended may keep the mount busy.
const RELEASED_WITHIN: Duration = Duration::from_secs(5);
/// The rclone remote's name in its `RCLONE_CONFIG_<NAME>_*` variables.
const REMOTE: &str = "OSCAR";
/// Every `RCLONE_CONFIG_OSCAR_<NAME>` a remote may set (see [`remote`]), for sidecars that
/// read them from a Secret whatever the provider.
pub const VARIABLES: &[&str] = &[
    "TYPE",
    "PROVIDER",
    "ENV_AUTH",
    "ACCESS_KEY_ID",
    "SECRET_ACCESS_KEY",
    "NO_CHECK_BUCKET",
    "REGION",
    "ENDPOINT",
    "FORCE_PATH_STYLE",
    "URL",
    "VENDOR",
    "BEARER_TOKEN",
    "USER",
];
/// What is kept of rclone's error output for the job's log.
const ERRORS_KEPT: usize = 4096;
/// Where a mount goes in its directory, beside rclone's own files.
const MOUNT_POINT: &str = "at";

/// rclone and the FUSE helper that unmounts without privileges.
#[derive(Debug, Clone)]
pub struct Rclone {
    program: PathBuf,
    fusermount: PathBuf,
}

impl Rclone {
    /// rclone, fusermount and `/dev/fuse` on this machine; why not when one is missing.
    pub fn find() -> Result<Self, String> {
        let program = find_program("rclone").ok_or("rclone is not installed")?;
        let fusermount = find_program("fusermount3")
            .or_else(|| find_program("fusermount"))
            .ok_or("fusermount (Debian's fuse3) is not installed")?;
        if !Path::new("/dev/fuse").exists() {
            return Err("this machine has no /dev/fuse".into());
        }
        Ok(Self {
            program,
            fusermount,
        })
    }

    /// Mounts `remote` in `dir` (made if missing; see [`Mounted::at`]) and waits until the
    /// mount is there. Files are streamed: rclone keeps no copy of them in `dir`.
    pub async fn mount(&self, remote: &Remote, dir: &Path) -> Result<Mounted, String> {
        let at = dir.join(MOUNT_POINT);
        // An earlier mount there not detached: this one would seem made at once.
        if is_mount_point(&at) {
            return Err(format!("mount: {} is still mounted", at.display()));
        }
        tokio::fs::create_dir_all(&at)
            .await
            .map_err(|e| format!("mount: cannot make {}: {e}", at.display()))?;
        let mut env = remote.env.clone();
        if let Some(password) = &remote.password {
            env.push((
                format!("RCLONE_CONFIG_{REMOTE}_PASS"),
                self.obscure(password).await?,
            ));
        }
        let mut command = Command::new(&self.program);
        command
            .arg("mount")
            .arg(format!("{REMOTE}:{}", remote.path))
            .arg(&at)
            .args(["--dir-cache-time", "5s"])
            // Errors alone: every one means a read or a write may have failed.
            .args(["--log-level", "ERROR", "--cache-dir"])
            .arg(dir.join("cache"))
            .args(&remote.flags)
            .env_clear()
            .env("HOME", dir)
            .env("RCLONE_CONFIG", dir.join("rclone.conf"))
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("mount: cannot start rclone: {e}"))?;
        let errors = tokio::spawn(kept(child.stderr.take()));
        let mut mounted = Mounted {
            at,
            fusermount: self.fusermount.clone(),
            child: Some(child),
            errors: Some(errors),
        };
        let deadline = tokio::time::Instant::now() + MOUNT_WITHIN;
        loop {
            if is_mount_point(&mounted.at) {
                return Ok(mounted);
            }
            let child = mounted.child.as_mut().expect("running");
            if let Ok(Some(status)) = child.try_wait() {
                let errors = mounted.errors().await;
                return Err(format!(
                    "mount: rclone could not mount {} ({status}): {errors}",
                    remote.path
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill().await;
                let errors = mounted.errors().await;
                return Err(format!(
                    "mount: {} was not mounted within {}s: {errors}",
                    remote.path,
                    MOUNT_WITHIN.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A password as rclone's configuration holds it.
    async fn obscure(&self, password: &str) -> Result<String, String> {
        use tokio::io::AsyncWriteExt;
        let mut child = Command::new(&self.program)
            .args(["obscure", "-"])
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("mount: cannot start rclone: {e}"))?;
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(password.as_bytes())
            .await
            .map_err(|e| format!("mount: cannot hand rclone the password: {e}"))?;
        drop(stdin);
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| format!("mount: rclone failed: {e}"))?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Detaches the mounts in `root` (jobs' directories) left by a server that stopped while
    /// its jobs ran (their rclone went with it), so that their directories can go.
    pub fn release_left_over(&self, root: &Path) {
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            self.release(&entry.path());
        }
    }

    /// Detaches the mount in `dir` left by an earlier run, if any.
    pub fn release(&self, dir: &Path) {
        let at = dir.join(MOUNT_POINT);
        if is_mount_point(&at) {
            lazy_unmount(&self.fusermount, &at);
        }
    }
}

/// Removes a mount's directory, never what is mounted in it: a mount point still in use (or
/// not detached) is left, with a warning, rather than emptied through the mount.
pub async fn remove(dir: &Path) {
    let at = dir.join(MOUNT_POINT);
    let removed = match tokio::fs::remove_dir(&at).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => tokio::fs::remove_dir_all(dir).await,
    };
    if let Err(err) = removed
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), %err, "cannot remove a mount's directory");
    }
}

/// A running mount. Dropped without [`Mounted::finish`] (a job stopped half-way), it is
/// detached and rclone left to upload what is being written before it exits.
pub struct Mounted {
    at: PathBuf,
    fusermount: PathBuf,
    child: Option<Child>,
    errors: Option<tokio::task::JoinHandle<String>>,
}

impl Mounted {
    /// Where it is mounted on the host.
    pub fn at(&self) -> &Path {
        &self.at
    }

    /// Unmounts, once nothing in the job uses it (detaching it if its processes still do
    /// after a moment), and waits until rclone has uploaded every file written to it; what
    /// went wrong otherwise.
    pub async fn finish(mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + RELEASED_WITHIN;
        loop {
            let unmounted = Command::new(&self.fusermount)
                .arg("-u")
                .arg(&self.at)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .await
                .map_err(|e| format!("mount: cannot run fusermount: {e}"))?;
            if unmounted.status.success() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                // Busy: detached now, gone when the last file is closed.
                if !lazy_unmount(&self.fusermount, &self.at) {
                    let refused = String::from_utf8_lossy(&unmounted.stderr);
                    return Err(format!("mount: cannot unmount: {}", refused.trim()));
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut child = self.child.take().expect("running");
        let status = match tokio::time::timeout(UPLOAD_WITHIN, child.wait()).await {
            Ok(status) => status.map_err(|e| format!("mount: lost rclone: {e}"))?,
            Err(_) => {
                let _ = child.kill().await;
                return Err(format!(
                    "mount: the files written to it were not all uploaded within {}s",
                    UPLOAD_WITHIN.as_secs()
                ));
            }
        };
        let errors = self.errors().await;
        match (status.success(), errors.is_empty()) {
            (true, true) => Ok(()),
            _ => Err(format!(
                "mount: the files written to it may not all be saved ({status}): {errors}"
            )),
        }
    }

    /// Waits until rclone exits while mounted (it died: the mount is dead); what it said.
    pub async fn lost(&mut self) -> String {
        let status = match self.child.as_mut() {
            Some(child) => child.wait().await,
            None => return std::future::pending().await,
        };
        let errors = self.errors().await;
        match status {
            Ok(status) => format!("its mount ended: rclone exited ({status}): {errors}"),
            Err(e) => format!("its mount ended: {e}"),
        }
    }

    async fn errors(&mut self) -> String {
        match self.errors.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => String::new(),
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Lazily: the job's processes may still be going.
        lazy_unmount(&self.fusermount, &self.at);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if tokio::time::timeout(UPLOAD_WITHIN, child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
            });
        }
    }
}

/// Detaches the mount on `at` now, whoever still uses it; whether it did.
fn lazy_unmount(fusermount: &Path, at: &Path) -> bool {
    std::process::Command::new(fusermount)
        .args(["-u", "-z"])
        .arg(at)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// rclone's error output, its last [`ERRORS_KEPT`] bytes (all of it is read: rclone must
/// never block on it).
async fn kept(stderr: Option<tokio::process::ChildStderr>) -> String {
    let Some(mut stderr) = stderr else {
        return String::new();
    };
    let mut text = Vec::new();
    let mut chunk = [0; 4096];
    while let Ok(read) = stderr.read(&mut chunk).await
        && read > 0
    {
        text.extend_from_slice(&chunk[..read]);
        let over = text.len().saturating_sub(ERRORS_KEPT);
        text.drain(..over);
    }
    String::from_utf8_lossy(&text).trim().to_string()
}

/// Whether something is mounted on `path` (a mount whose rclone is gone included), from the
/// mount table. Never by a stat of the mount: rclone answers that only after asking the store,
/// which may be this server, on the very thread the stat would block.
fn is_mount_point(path: &Path) -> bool {
    let Some(path) = path
        .parent()
        .and_then(|parent| std::fs::canonicalize(parent).ok())
        .zip(path.file_name())
        .map(|(parent, name)| parent.join(name))
    else {
        return false;
    };
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|table| mounted_in(&table, &path))
}

/// Whether `mountinfo` (proc(5)) lists a mount on `path`, absolute and canonical.
fn mounted_in(mountinfo: &str, path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|point| unescape_octal(point) == path.as_os_str().as_bytes())
}

/// A mount table's path: space, tab, newline and backslash are written `\ooo`.
fn unescape_octal(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes.get(i + 1..i + 4).and_then(|digits| {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], code) {
            (b'\\', Some(code)) => {
                out.push(code);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// How rclone reaches a mount's provider: its `RCLONE_CONFIG_OSCAR_*` variables (credentials
/// never on a command line), the password to obscure, the folder and the service's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    env: Vec<(String, String)>,
    password: Option<String>,
    path: String,
    flags: Vec<String>,
}

impl Remote {
    /// The `RCLONE_CONFIG_OSCAR_*` variables, credentials among them.
    pub fn variables(&self) -> &[(String, String)] {
        &self.env
    }

    /// The WebDAV password, which rclone takes obscured.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The folder, in rclone's `OSCAR:<path>`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// rclone mount flags beyond the platform's.
    pub fn flags(&self) -> &[String] {
        &self.flags
    }

    /// Where processes see it: `/mnt/<path>`.
    pub fn seen_at(&self) -> String {
        format!("{}/{}", model::service::mount::MOUNT_ROOT, self.path)
    }
}

/// The remote the instances of `service` (an exposed service's, warm workers) mount its
/// `mount` from, with `secrets` (the service's, stored apart) and keys of their own to the
/// platform's store; None without a mount or instances, why not when it cannot be made.
pub fn for_instances(
    service: &Service,
    secrets: &BTreeMap<String, String>,
    storage: &StorageAccess,
) -> Option<Result<Remote, String>> {
    let mount = Mount::of_instances(service)?;
    let config = function_config(service, secrets, storage);
    Some(remote(
        &mount,
        &config,
        &crate::store_keys::for_instances(storage, service),
    ))
}

/// The environment variable of the remote's setting `name` (one of [`VARIABLES`]).
pub fn variable(name: &str) -> String {
    format!("RCLONE_CONFIG_{REMOTE}_{name}")
}

/// The remote of `mount`, from the job's providers; `store_keys` are the job's keys to the
/// platform's store (`minio.default`).
pub fn remote(
    mount: &Mount,
    config: &FunctionConfig,
    store_keys: &(String, String),
) -> Result<Remote, String> {
    let id = mount.provider();
    let provider = config
        .provider(&id)
        .ok_or_else(|| format!("mount: the storage provider {id} is not configured"))?;
    let var = |name: &str, value: &str| (variable(name), value.to_string());
    let mut flags = mount.flags();
    let mut password = None;
    let env = match mount.kind().as_str() {
        "minio" | "s3" => {
            let (access, secret) = if id == model::service::PLATFORM_STORE {
                store_keys.clone()
            } else {
                (provider.access_key.clone(), provider.secret_key.clone())
            };
            let aws = mount.kind() == "s3" && provider.endpoint.is_empty();
            let mut env = vec![
                var("TYPE", "s3"),
                var("PROVIDER", if aws { "AWS" } else { "Other" }),
                var("ENV_AUTH", "false"),
                var("ACCESS_KEY_ID", &access),
                var("SECRET_ACCESS_KEY", &secret),
                // Keys that may use a bucket need not be allowed to make one.
                var("NO_CHECK_BUCKET", "true"),
            ];
            if !provider.region.is_empty() {
                env.push(var("REGION", &provider.region));
            }
            if !aws {
                env.push(var("ENDPOINT", &provider.endpoint));
                env.push(var("FORCE_PATH_STYLE", "true"));
            }
            env
        }
        "webdav" => {
            let mut env = vec![
                var("TYPE", "webdav"),
                var(
                    "URL",
                    &supervisor::remote::root_url(provider.field("hostname")),
                ),
                var("VENDOR", "other"),
            ];
            match (provider.field("token"), provider.field("login")) {
                (token, _) if !token.is_empty() => env.push(var("BEARER_TOKEN", token)),
                ("", "") => {}
                (_, login) => {
                    env.push(var("USER", login));
                    password = Some(provider.field("password").to_string());
                }
            }
            if provider.verify == Some(false) {
                flags.push("--no-check-certificate".into());
            }
            env
        }
        kind => return Err(format!("mount: {kind} providers cannot be mounted")),
    };
    Ok(Remote {
        env,
        password,
        path: mount.folder().to_string(),
        flags,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn mount_points_are_read_from_the_mount_table() {
        let table = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                     31 27 0:50 / /data/exposed/my\\040site-0.mount/at rw,nosuid - fuse.rclone OSCAR:b rw\n";
        assert!(mounted_in(table, Path::new("/proc")));
        assert!(mounted_in(
            table,
            Path::new("/data/exposed/my site-0.mount/at")
        ));
        assert!(!mounted_in(
            table,
            Path::new("/data/exposed/my site-0.mount")
        ));
        assert!(!mounted_in(
            table,
            Path::new("/data/exposed/my\\040site-0.mount/at")
        ));
        // On this machine: /proc is a mount point, this crate's sources are not.
        assert!(is_mount_point(Path::new("/proc")));
        assert!(!is_mount_point(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
        ));
    }

    fn config(providers: serde_json::Value) -> FunctionConfig {
        serde_json::from_value(json!({"storage_providers": providers})).unwrap()
    }

    fn mount(provider: &str, path: &str, options: &str) -> Mount {
        Mount {
            storage_provider: provider.into(),
            path: path.into(),
            options: options.into(),
        }
    }

    fn vars(remote: &Remote) -> Vec<String> {
        remote
            .env
            .iter()
            .map(|(k, v)| {
                let name = k.strip_prefix("RCLONE_CONFIG_OSCAR_").unwrap();
                assert!(VARIABLES.contains(&name), "{name} is not in VARIABLES");
                format!("{name}={v}")
            })
            .collect()
    }

    #[test]
    fn the_platform_store_is_reached_with_the_jobs_own_keys() {
        let config = config(
            json!({"minio": {"default": {"endpoint": "http://127.0.0.1:9000",
            "region": "us-east-1"}}}),
        );
        let keys = ("JOBKEY".to_string(), "jobsecret".to_string());
        let remote = remote(&mount("minio", "/data/in/", "--read-only"), &config, &keys).unwrap();
        assert_eq!(
            vars(&remote),
            [
                "TYPE=s3",
                "PROVIDER=Other",
                "ENV_AUTH=false",
                "ACCESS_KEY_ID=JOBKEY",
                "SECRET_ACCESS_KEY=jobsecret",
                "NO_CHECK_BUCKET=true",
                "REGION=us-east-1",
                "ENDPOINT=http://127.0.0.1:9000",
                "FORCE_PATH_STYLE=true"
            ]
        );
        assert_eq!(
            (remote.path.as_str(), remote.flags.as_slice()),
            ("data/in", &["--read-only".to_string()][..])
        );
    }

    #[test]
    fn other_providers_are_reached_with_their_own_credentials() {
        let config = config(json!({
            "s3": {"aws": {"access_key": "AK", "secret_key": "SK", "region": "eu-west-1"}},
            "webdav": {"dcache": {"hostname": "dav.example/remote.php", "login": "u",
                "password": "p w", "verify": false},
                "token": {"hostname": "http://dav", "token": "macaroon"}},
        }));
        let none = (String::new(), String::new());
        let aws = remote(&mount("s3.aws", "b/f", ""), &config, &none).unwrap();
        assert!(vars(&aws).contains(&"PROVIDER=AWS".to_string()));
        assert!(vars(&aws).contains(&"ACCESS_KEY_ID=AK".to_string()));
        assert!(!vars(&aws).iter().any(|v| v.starts_with("ENDPOINT=")));
        let dav = remote(&mount("webdav.dcache", "data", ""), &config, &none).unwrap();
        assert_eq!(
            vars(&dav),
            [
                "TYPE=webdav",
                "URL=https://dav.example/remote.php",
                "VENDOR=other",
                "USER=u"
            ]
        );
        assert_eq!(dav.password.as_deref(), Some("p w"));
        assert_eq!(dav.flags, ["--no-check-certificate"]);
        let token = remote(&mount("webdav.token", "data", ""), &config, &none).unwrap();
        assert!(vars(&token).contains(&"BEARER_TOKEN=macaroon".to_string()));
        assert!(remote(&mount("s3.gone", "b", ""), &config, &none).is_err());
    }
}
