//! The local executors of embedded mode: each job is a supervisor child process in a
//! [slot](super::slots) of its service (its working directory, emptied) and its own process
//! group, killed as a group at its time limit, inside
//! the [`sandbox`](super::sandbox). The image executor runs it in the service's image, pulled
//! into the image cache; the host executor with the host's programs (and without the sandbox
//! when the host allows none and the operator accepts it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use model::function::Report;
use model::function::log::{MARKED_ENV, MAX_MARKED_LINE};
use model::function::work::{DONE, WORKER_SOCKET, WorkRequest};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::beneath::Beneath;
use super::executor::{EventBody, Execution, Executor, Finished, JobVolume, refused};
use super::logs::{self, Line, LineSplitter, LogSink, send_all};
use super::rclone::{self, Mounted, Rclone};
use super::sandbox::{
    Bind, IMAGE_JOB_DIR, JobMount, Loader, Network, PLATFORM_DIR, Programs, Sandbox,
};
use super::slots::{self, JobSlots, Slot, write_over};
use model::service::Service;
use model::service::mount::Mount;

/// Time the supervisor gets beyond the script's limit to upload outputs and report.
const GRACE: Duration = Duration::from_secs(60);
/// Environment variables passed through from the server to jobs; nothing else leaks in.
const PASSED_THROUGH: &[&str] = &["PATH", "LANG", "LC_ALL", "TZ"];

pub struct LocalExecutor {
    /// The supervisor program and its leading arguments.
    pub supervisor: Vec<String>,
    /// Jobs' working directories (`jobs/` in the data dir).
    pub slots: JobSlots,
    /// None: jobs run as plain processes (see `OSCAR_ALLOW_UNSANDBOXED_JOBS`).
    pub sandbox: Option<Sandbox>,
    /// Some: each job runs in its service's image (`OSCAR_EXECUTOR=image`, always sandboxed).
    pub images: Option<ServiceImages>,
    /// Processes a sandboxed job may have at once (`OSCAR_JOB_PIDS_LIMIT`).
    pub pids_limit: u32,
    /// Bytes a job's directory may hold (`OSCAR_JOB_DISK_LIMIT`).
    pub disk_limit: u64,
    /// Managed volumes' directories go under it (`volumes/` in the data dir).
    pub volumes_root: PathBuf,
    pub volume_limits: crate::volumes::Limits,
    /// What mounts services' `mount`s, or why this machine cannot.
    pub rclone: Result<Rclone, String>,
}

/// A service's volume as a process gets it: its directory here, where the process sees it,
/// and its size.
struct VolumeMount {
    host: PathBuf,
    seen: PathBuf,
    bytes: u64,
}

impl VolumeMount {
    /// The variables by which the supervisor's watchdog keeps the volume to its size.
    fn watched(&self) -> [(String, String); 2] {
        [
            ("OSCAR_VOLUME_PATH".into(), path_text(&self.seen)),
            ("OSCAR_VOLUME_LIMIT".into(), self.bytes.to_string()),
        ]
    }
}

/// The image executor's part: where images come from and how the supervisor starts in one.
pub struct ServiceImages {
    pub cache: std::sync::Arc<images::Images>,
    pub loader: Loader,
}

/// An image a job runs in, kept from eviction while it runs, with the operator's mounts as it
/// sees them.
struct JobImage {
    image: images::Image,
    mounts: Vec<(JobMount, PathBuf)>,
}

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    fn volume_limits(&self) -> crate::volumes::Limits {
        self.volume_limits
    }

    async fn create_volume(&self, owner: &str, name: &str, _bytes: u64) -> Result<(), String> {
        tokio::fs::create_dir_all(self.volume_dir(owner, name))
            .await
            .map_err(|e| format!("cannot make the volume's directory: {e}"))
    }

    async fn delete_volume(&self, owner: &str, name: &str) -> Result<(), String> {
        match tokio::fs::remove_dir_all(self.volume_dir(owner, name)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove the volume's directory: {e}")),
        }
    }

    async fn volume_phase(&self, owner: &str, name: &str) -> (String, String) {
        match tokio::fs::metadata(self.volume_dir(owner, name)).await {
            Ok(meta) if meta.is_dir() => ("Bound".into(), String::new()),
            _ => (
                "Lost".into(),
                "its directory is missing from the data directory".into(),
            ),
        }
    }

    fn pulls_images(&self) -> bool {
        self.images.is_some()
    }

    async fn check_service(&self, service: &Service) -> model::AppResult<()> {
        if Mount::of(service).is_none() {
            return Ok(());
        }
        let why = match (&self.rclone, &self.sandbox) {
            (Err(why), _) => why.clone(),
            (Ok(_), None) => "jobs run without the sandbox here".into(),
            (Ok(_), Some(_)) => return Ok(()),
        };
        Err(model::AppError::bad_request(
            "mount",
            format!("this server cannot mount folders into jobs: {why}"),
        ))
    }

    fn image_pull(&self, image: &str) -> Option<u8> {
        self.images.as_ref()?.cache.pulling(image)
    }

    async fn run(
        &self,
        service: &Service,
        execution: Execution,
        log: LogSink,
    ) -> Result<Finished, String> {
        let image = match &self.images {
            Some(images) => match self
                .prepare_image(images, service, execution.pull_credentials.as_ref())
                .await
            {
                Ok(image) => Some(image),
                // Not retried: a missing image, refused credentials or another architecture
                // stay so. The reason goes to the job's log and its result.
                Err(reason) => return Ok(refused(&log, reason).await),
            },
            None => None,
        };
        let volume = match &execution.volume {
            Some(volume) => match self.volume_mount(&service.owner, volume, image.as_ref()) {
                Ok(mount) => Some(mount),
                Err(reason) => return Ok(refused(&log, reason).await),
            },
            None => None,
        };
        let slot = self
            .slots
            .take(&service.owner, &service.name)
            .map_err(|e| format!("cannot prepare the job's working directory: {e}"))?;
        // Beside the slot, where a restarted server finds what a killed one left mounted.
        let mount_dir = mount_dir_of(slot.dir());
        let result = async {
            let mount = match &execution.mount {
                Some(mount) => match async {
                    let remote = rclone::remote(mount, &execution.config, &execution.store_keys)?;
                    self.mount(&remote, image.as_ref(), &mount_dir).await
                }
                .await
                {
                    Ok(mounted) => Some(mounted),
                    Err(reason) => return Ok(refused(&log, reason).await),
                },
                None => None,
            };
            let binds = service_binds(volume.as_ref(), mount.as_ref());
            let mut result = self
                .run_in(
                    &slot,
                    &execution,
                    image.as_ref(),
                    volume.as_ref(),
                    &binds,
                    log.clone(),
                )
                .await;
            if let Some((mounted, _)) = mount {
                // Only once its files are uploaded is the job's work saved.
                if let Err(reason) = mounted.finish().await {
                    let _ = log.send(logs::note(&reason)).await;
                    if let Ok(Finished { report, .. }) = &mut result {
                        report.fail(reason);
                    }
                }
            }
            result
        }
        .await;
        rclone::remove(&mount_dir).await;
        // Reused only where the job could not change the platform's files.
        self.slots.give_back(slot, self.sandbox.is_some()).await;
        result
    }
}

impl LocalExecutor {
    /// Where `owner`'s volume `name` lives; owners by a digest, since their ids may hold any
    /// character.
    fn volume_dir(&self, owner: &str, name: &str) -> PathBuf {
        use sha2::Digest;
        let owner = hex::encode(&sha2::Sha256::digest(owner.as_bytes())[..12]);
        self.volumes_root.join(owner).join(name)
    }

    /// The volume's directory and where the job sees it: in an image, its mount point is made
    /// in the image's root first (read-only in the sandbox), inside the image.
    fn volume_mount(
        &self,
        owner: &str,
        volume: &JobVolume,
        image: Option<&JobImage>,
    ) -> Result<VolumeMount, String> {
        if self.sandbox.is_none() {
            return Err(format!(
                "volume {:?}: volumes are mounted only in the sandbox, which this server runs without",
                volume.name
            ));
        }
        let host = self.volume_dir(owner, &volume.name);
        if !host.is_dir() {
            return Err(format!(
                "volume {:?}: its directory is missing from the data directory",
                volume.name
            ));
        }
        let seen = mount_point(image, &volume.mount_path)
            .map_err(|why| format!("volume {:?}: {why}", volume.name))?;
        Ok(VolumeMount {
            host,
            seen,
            bytes: volume.bytes,
        })
    }

    /// Mounts the service's `mount` from `remote` in `dir` (rclone's mount point and files)
    /// for a job or an instance; with where it sees it.
    async fn mount(
        &self,
        remote: &rclone::Remote,
        image: Option<&JobImage>,
        dir: &Path,
    ) -> Result<(Mounted, PathBuf), String> {
        let rclone = self
            .rclone
            .as_ref()
            .map_err(|why| format!("mount: this server cannot mount: {why}"))?;
        if self.sandbox.is_none() {
            return Err(
                "mount: mounts are made only in the sandbox, which this server runs without".into(),
            );
        }
        let seen = mount_point(image, &remote.seen_at()).map_err(|why| format!("mount: {why}"))?;
        let mounted = rclone.mount(remote, dir).await?;
        Ok((mounted, seen))
    }

    /// The service's image, pulled unless cached, with the mount points the job needs in it.
    async fn prepare_image(
        &self,
        images: &ServiceImages,
        service: &Service,
        credentials: Option<&images::Credentials>,
    ) -> Result<JobImage, String> {
        let sandbox = self
            .sandbox
            .as_ref()
            .ok_or("images run only in the sandbox")?;
        let image = images.cache.prepare(&service.image, credentials).await?;
        let mounts = sandbox
            .image_mounts(&image.root)
            .map_err(|e| format!("cannot prepare the image's mount points: {e}"))?;
        Ok(JobImage { image, mounts })
    }

    async fn run_in(
        &self,
        slot: &Slot,
        execution: &Execution,
        image: Option<&JobImage>,
        volume: Option<&VolumeMount>,
        binds: &[Bind<'_>],
        log: LogSink,
    ) -> Result<Finished, String> {
        let (dir, platform) = (slot.job(), slot.platform());
        write_platform(&platform, execution)
            .map_err(|e| format!("cannot prepare the job's working directory: {e}"))?;
        // In the sandbox the platform's files are the job's to read only, where a pod has
        // them; so they can be written over for the slot's next job.
        let seen_platform = match self.sandbox {
            Some(_) => Path::new(PLATFORM_DIR),
            None => platform.as_path(),
        };
        let shown = [slots::CONFIG, slots::PROVIDERS]
            .map(|name| (platform.join(name), seen_platform.join(name)));
        let mut all_binds = binds.to_vec();
        if self.sandbox.is_some() {
            all_binds.extend(shown.iter().map(|(host, seen)| Bind {
                host,
                seen,
                writable: false,
            }));
        }
        let (mut command, seen_dir) = self.command(&dir, image, &[], Network::Host, &all_binds)?;
        // Paths as the job sees them.
        let seen = JobFiles::seen(&seen_dir, seen_platform);
        command
            .env("TMPDIR", &seen.tmp)
            .envs(execution.env.iter().map(|(k, v)| (k, v)))
            .envs(execution.secrets.iter().map(|(k, v)| (k, v)))
            .env("OSCAR_CONFIG_DIR", &seen.config)
            .env("OSCAR_PROVIDERS_DIR", &seen.providers)
            .env("OSCAR_RESULT_FILE", &seen.result)
            .env("OSCAR_INPUT_DIR", &seen.input)
            .env("OSCAR_OUTPUT_DIR", &seen.output)
            .env("OSCAR_EVENT_FILE", &seen.event)
            .env(
                "OSCAR_SCRIPT_TIMEOUT",
                execution.timeout.as_secs().max(1).to_string(),
            )
            .env(MARKED_ENV, "1");
        if execution.sync {
            command.env("OSCAR_RESPONSE_FILE", &seen.response);
        }
        if let Some(bytes) = execution.memory {
            command.env("OSCAR_SCRIPT_MEMORY_LIMIT", bytes.to_string());
        }
        command.env("OSCAR_SCRIPT_DISK_LIMIT", self.disk_limit.to_string());
        if let Some(volume) = volume {
            command.envs(volume.watched());
        }
        // Counted in /proc, which shows the job's processes alone only in the sandbox.
        if self.sandbox.is_some() {
            command.env("OSCAR_SCRIPT_PIDS_LIMIT", self.pids_limit.to_string());
        }
        // One pipe for the supervisor's stdout and stderr: its messages keep their place
        // among the script's lines, which it writes marked (model::function::log).
        let Started {
            mut child,
            group,
            output,
        } = start(command)?;
        let forwarded = tokio::spawn(forward(output, log));

        let limit = execution.timeout + GRACE;
        let status = match tokio::time::timeout(limit, child.wait()).await {
            Ok(status) => status.map_err(|e| format!("lost the supervisor process: {e}"))?,
            Err(_) => {
                group.kill();
                let _ = child.wait().await;
                let _ = forwarded.await;
                return Ok(timed_out(limit));
            }
        };
        // Processes the script left behind (or a killed supervisor's script) would hold the
        // output pipes open: the group ends with its supervisor.
        group.kill();
        let _ = forwarded.await;
        read_finished(dir, execution.sync, status.to_string()).await
    }
}

/// The service's volume and mount, writable, where a job or instance sees them.
fn service_binds<'a>(
    volume: Option<&'a VolumeMount>,
    mount: Option<&'a (Mounted, PathBuf)>,
) -> Vec<Bind<'a>> {
    let volume = volume.map(|v| (v.host.as_path(), v.seen.as_path()));
    let mount = mount.map(|(m, seen)| (m.at(), seen.as_path()));
    volume
        .into_iter()
        .chain(mount)
        .map(|(host, seen)| Bind {
            host,
            seen,
            writable: true,
        })
        .collect()
}

/// Where the mount of the job or instance in `dir` is made: beside it, since rclone's files
/// are not the job's to see.
pub fn mount_dir_of(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".mount");
    dir.with_file_name(name)
}

/// Where a process sees `path` (absolute): in an image, its mount point is made in the image's
/// root first (read-only in the sandbox), following the image's symlinks inside the image.
fn mount_point(image: Option<&JobImage>, path: &str) -> Result<PathBuf, String> {
    let seen = match image {
        Some(job) => {
            let root = &job.image.root;
            let inside = images::unpack::resolve(root, Path::new(path))
                .and_then(|inside| std::fs::create_dir_all(&inside).map(|()| inside))
                .map_err(|e| format!("cannot make its mount point: {e}"))?;
            Path::new("/").join(inside.strip_prefix(root).unwrap_or(&inside))
        }
        None => PathBuf::from(path),
    };
    // The image's symlinks may lead elsewhere than the path says (`/data -> /oscar`).
    if let Some(reserved) = model::service::validate::reserved_mount_path(&seen.to_string_lossy()) {
        return Err(format!(
            "{path} leads to {} in the image, inside {reserved}, which the platform provides to jobs",
            seen.display()
        ));
    }
    Ok(seen)
}

/// How a run stopped at its time limit ends.
fn timed_out(limit: Duration) -> Finished {
    Finished {
        report: Report::Failed {
            exit_code: None,
            reason: format!(
                "the job ran longer than {}s and was stopped",
                limit.as_secs()
            ),
            outputs: Vec::new(),
        },
        response: None,
    }
}

/// The report (and a synchronous job's response) the supervisor left in the job's directory
/// `dir`, never through a symlink the job made there; `ended` says how it ended when there is
/// none.
async fn read_finished(dir: PathBuf, sync: bool, ended: String) -> Result<Finished, String> {
    let read = move || {
        let dir = Beneath::open(&dir).ok();
        let read = |name: &str| dir.as_ref().and_then(|dir| dir.read(name).ok());
        // Empty: the slot's previous report, truncated, and none written since.
        let report = match read(slots::REPORT).filter(|bytes| !bytes.is_empty()) {
            Some(bytes) => serde_json::from_slice::<Report>(&bytes)
                .map_err(|e| format!("the supervisor's report is unreadable: {e}"))?,
            None => return Err(format!("the supervisor ended without a report ({ended})")),
        };
        let response = match (&report, sync) {
            (Report::Succeeded { .. }, true) => read(RESPONSE),
            _ => None,
        };
        Ok(Finished { report, response })
    };
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| format!("cannot read the job's report: {e}"))?
}

impl LocalExecutor {
    /// The command that starts the supervisor (with `extra` arguments) for a job or an
    /// exposed service's instance in `dir`: in the sandbox when there is one, with a cleared
    /// environment holding only the image's variables (its PATH) or a few of the server's,
    /// and the service's `binds` (host directory, where it is seen); and where the process
    /// sees `dir`.
    fn command(
        &self,
        dir: &Path,
        image: Option<&JobImage>,
        extra: &[String],
        network: Network,
        binds: &[Bind<'_>],
    ) -> Result<(Command, PathBuf), String> {
        let (program, leading) = self
            .supervisor
            .split_first()
            .ok_or("no supervisor program configured")?;
        let args: Vec<String> = leading.iter().chain(extra).cloned().collect();
        let (programs, seen_dir, base_env): (_, &Path, Vec<(String, String)>) =
            match (image, &self.images) {
                (Some(job), Some(images)) => (
                    Programs::Image {
                        root: &job.image.root,
                        loader: &images.loader,
                        mounts: &job.mounts,
                    },
                    Path::new(IMAGE_JOB_DIR),
                    job.image
                        .config
                        .env
                        .iter()
                        .filter_map(|entry| entry.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                _ => (
                    Programs::Host,
                    dir,
                    PASSED_THROUGH
                        .iter()
                        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
                        .collect(),
                ),
            };
        let mut command = match &self.sandbox {
            Some(sandbox) => {
                let mut command = Command::new(sandbox.program());
                command.args(sandbox.arguments(
                    programs,
                    dir,
                    Path::new(program),
                    &args,
                    network,
                    binds,
                ));
                command
            }
            None => {
                let mut command = Command::new(program);
                command.args(&args);
                // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
                unsafe {
                    command.pre_exec(|| {
                        // Nothing outlives the server that runs it (a job's lease will be
                        // taken over, an instance started again). In the sandbox, bubblewrap's
                        // `--die-with-parent` does it, and without a `pre_exec` the child is
                        // spawned without copying the server's page tables (`posix_spawn`).
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                command
            }
        };
        command
            .current_dir(dir)
            .env_clear()
            .envs(base_env)
            .env("HOME", seen_dir)
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        Ok((command, seen_dir.to_path_buf()))
    }

    /// Starts an instance of a service in its directory (emptied first), in the service's
    /// sandbox and image: an exposed service's server ([`exposed_plan`]) or a warm worker
    /// ([`Self::worker_plan`]), taking the platform's connections on a socket there.
    pub async fn launch(
        &self,
        service: &Service,
        launch: Launch,
    ) -> Result<(Instance, OutputPipe), String> {
        let image = match &self.images {
            Some(images) => Some(
                self.prepare_image(images, service, launch.pull_credentials.as_ref())
                    .await?,
            ),
            None => None,
        };
        let dir = &launch.dir;
        let _ = std::fs::remove_dir_all(dir);
        // What a previous run of the instance left (its rclone died with the mount mounted).
        if let Ok(rclone) = &self.rclone {
            rclone.release(&mount_dir_of(dir));
        }
        rclone::remove(&mount_dir_of(dir)).await;
        std::fs::create_dir_all(dir.join("tmp"))
            .map_err(|e| format!("cannot prepare the instance's directory: {e}"))?;
        let seen_dir = match image {
            Some(_) => PathBuf::from(IMAGE_JOB_DIR),
            None => dir.clone(),
        };
        let plan = match launch.kind {
            InstanceKind::Exposed => exposed_plan(service, image.as_ref(), &seen_dir, &launch)?,
            InstanceKind::Worker => self.worker_plan(&seen_dir, dir)?,
        };
        let volume = match &launch.volume {
            Ok(Some(volume)) => Some(self.volume_mount(&service.owner, volume, image.as_ref())?),
            Ok(None) => None,
            Err(reason) => return Err(reason.clone()),
        };
        let mounted = match &launch.mount {
            Some(Ok(remote)) => Some(
                self.mount(remote, image.as_ref(), &mount_dir_of(dir))
                    .await?,
            ),
            Some(Err(reason)) => return Err(reason.clone()),
            None => None,
        };
        let binds = service_binds(volume.as_ref(), mounted.as_ref());
        let (mut command, _) =
            self.command(dir, image.as_ref(), &plan.args, plan.network, &binds)?;
        command.env("TMPDIR", seen_dir.join("tmp")).envs(plan.env);
        // Kept to its size as a job's: per request in a worker, for as long as it runs in an
        // exposed service's instance.
        if let Some(volume) = &volume {
            command.envs(volume.watched());
        }
        let Started {
            child,
            group,
            output,
        } = start(command)?;
        let instance = Instance {
            socket: InstanceSocket {
                path: dir.join(plan.socket),
                pid: child.id().unwrap_or_default(),
            },
            seen_dir,
            child,
            _group: group,
            _image: image,
            mounted: mounted.map(|(mounted, _)| mounted),
        };
        Ok((instance, output))
    }

    /// A warm worker: the supervisor in serve mode, in the host's network as jobs are, taking
    /// requests on [`WORKER_SOCKET`]; each request brings its job's files and variables.
    fn worker_plan(&self, seen_dir: &Path, dir: &Path) -> Result<Plan, String> {
        std::fs::create_dir_all(dir.join("requests"))
            .map_err(|e| format!("cannot prepare the worker's directory: {e}"))?;
        let mut env = vec![
            (
                "OSCAR_SERVE_SOCKET".to_string(),
                path_text(&seen_dir.join(WORKER_SOCKET)),
            ),
            (
                "OSCAR_SCRIPT_DISK_LIMIT".to_string(),
                self.disk_limit.to_string(),
            ),
            (MARKED_ENV.to_string(), "1".to_string()),
        ];
        if self.sandbox.is_some() {
            env.push((
                "OSCAR_SCRIPT_PIDS_LIMIT".to_string(),
                self.pids_limit.to_string(),
            ));
        }
        Ok(Plan {
            args: vec!["serve".to_string()],
            network: Network::Host,
            socket: WORKER_SOCKET,
            env,
        })
    }
}

/// Where an instance of an exposed service takes the platform's connections, in its
/// directory.
pub const INSTANCE_SOCKET: &str = "instance.sock";

/// How an instance of each kind is started: the supervisor's arguments, its network, where it
/// takes connections in its directory, and its variables.
struct Plan {
    args: Vec<String>,
    network: Network,
    socket: &'static str,
    env: Vec<(String, String)>,
}

/// An exposed service's server: the supervisor in expose mode running the service's script,
/// or the image's own command with `default_command`, in a network of its own.
fn exposed_plan(
    service: &Service,
    image: Option<&JobImage>,
    seen_dir: &Path,
    launch: &Launch,
) -> Result<Plan, String> {
    let expose = service
        .expose
        .as_ref()
        .ok_or("the service is not exposed")?;
    let port = expose.port().ok_or("the service exposes no port")?;
    let (workdir, mut program) = match (image, expose.default_command) {
        (Some(image), true) => (
            image.image.config.working_dir.clone(),
            image.image.config.command(),
        ),
        (None, true) => {
            return Err(
                "default_command runs the image's own command, which needs the image executor (OSCAR_EXECUTOR=image)".into(),
            );
        }
        (_, false) => {
            std::fs::write(launch.dir.join("script.sh"), &service.script)
                .map_err(|e| format!("cannot prepare the instance's directory: {e}"))?;
            let script = path_text(&seen_dir.join("script.sh"));
            (String::new(), vec!["/bin/sh".to_string(), script])
        }
    };
    if program.is_empty() {
        return Err(format!(
            "the image {} names no command to run",
            service.image
        ));
    }
    let mut args = vec!["expose".to_string(), "--".to_string()];
    args.append(&mut program);
    let workdir = match workdir.as_str() {
        "" => path_text(seen_dir),
        given => given.to_string(),
    };
    let mut env = launch.env.clone();
    env.extend([
        (
            "OSCAR_EXPOSE_SOCKET".to_string(),
            path_text(&seen_dir.join(INSTANCE_SOCKET)),
        ),
        ("OSCAR_EXPOSE_PORT".to_string(), port.to_string()),
        ("OSCAR_EXPOSE_WORKDIR".to_string(), workdir),
    ]);
    if let Some(bytes) = launch.memory {
        env.push(("OSCAR_SCRIPT_MEMORY_LIMIT".to_string(), bytes.to_string()));
    }
    Ok(Plan {
        args,
        network: Network::Own,
        socket: INSTANCE_SOCKET,
        env,
    })
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// What a long-running instance of a service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceKind {
    /// An exposed service's server, in a network of its own.
    Exposed,
    /// A warm worker of a synchronous service (`synchronous.min_scale`): the supervisor's
    /// serve mode, in the host's network as jobs are, running one `/run` at a time.
    Worker,
}

/// What an instance is started with.
pub struct Launch {
    pub kind: InstanceKind,
    /// Its directory (emptied and made).
    pub dir: PathBuf,
    /// The service's variables and secrets, with the platform's (`OSCAR_SERVICE_*`).
    pub env: Vec<(String, String)>,
    pub memory: Option<u64>,
    pub pull_credentials: Option<images::Credentials>,
    /// The service's volume, or why it cannot have it (the instance does not start).
    pub volume: Result<Option<JobVolume>, String>,
    /// The remote of the service's `mount`, or why it cannot be made (the instance does not
    /// start).
    pub mount: Option<Result<rclone::Remote, String>>,
}

/// Where an instance takes connections: a socket in its directory, which is the instance's to
/// change. Made a symlink to another socket on this machine (another service's instance, a
/// daemon's), it would have the platform send that socket its callers' requests: only a
/// socket the instance's own processes listen on is connected to.
#[derive(Debug, Clone)]
pub struct InstanceSocket {
    path: PathBuf,
    /// The process the instance was started as (the sandbox's, or the supervisor's).
    pid: u32,
}

impl InstanceSocket {
    pub async fn connect(&self) -> std::io::Result<tokio::net::UnixStream> {
        let stream = tokio::net::UnixStream::connect(&self.path).await?;
        match stream.peer_cred()?.pid() {
            Some(peer) if descends_from(peer as u32, self.pid) => Ok(stream),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the socket in the instance's directory is not the instance's own",
            )),
        }
    }
}

/// Whether process `pid` is `ancestor` or one of its descendants (by the parents in `/proc`).
fn descends_from(mut pid: u32, ancestor: u32) -> bool {
    let parent = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command's name, which may hold anything but ends with the last ')'.
        let (_, after) = stat.rsplit_once(')')?;
        after.split_whitespace().nth(1)?.parse().ok()
    };
    // Process trees in a sandbox are shallow; the bound ends a walk that loops.
    for _ in 0..64 {
        if pid == ancestor {
            return true;
        }
        match parent(pid) {
            Some(next) if next > 0 && next != pid => pid = next,
            _ => return false,
        }
    }
    false
}

/// A running instance: its process and where it takes connections. Dropping it kills it.
pub struct Instance {
    pub socket: InstanceSocket,
    /// Its directory as it sees it.
    pub seen_dir: PathBuf,
    child: tokio::process::Child,
    _group: ProcessGroup,
    /// Kept from eviction while it runs.
    _image: Option<JobImage>,
    /// Detached once its processes are gone (fields drop in order), then left to upload what
    /// was written.
    mounted: Option<Mounted>,
}

impl Instance {
    /// Waits until its process exits, or its mount's rclone does (its `/mnt` is dead then, and
    /// the instance is to start again); why.
    pub async fn ended(&mut self) -> String {
        let (child, mounted) = (&mut self.child, &mut self.mounted);
        let lost = async {
            match mounted {
                Some(mounted) => mounted.lost().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => match status {
                Ok(status) => format!("exited ({status})"),
                Err(e) => format!("lost its process ({e})"),
            },
            why = lost => why,
        }
    }
}

impl LocalExecutor {
    /// Runs `execution` on the warm worker whose directory is `dir` (`seen_dir` inside it),
    /// over `connection` to its socket: its files are laid out as a job's, under `requests/`.
    /// Also says whether the worker answered: one that did not (lost, or past the time limit,
    /// or it changed its `requests`) may still be running the request.
    pub async fn run_on_worker(
        &self,
        dir: &Path,
        seen_dir: &Path,
        connection: tokio::net::UnixStream,
        execution: Execution,
    ) -> (Result<Finished, String>, bool) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        // Laid out where the worker cannot reach, then moved in: `requests` is the worker's
        // to change, and the server never writes through what it made there.
        let staged = staging_dir_of(dir).join(&execution.job);
        let requests = match stage_request(dir, &staged, &execution) {
            Ok(requests) => requests,
            Err(reason) => {
                let _ = tokio::fs::remove_dir_all(&staged).await;
                return (Err(reason), false);
            }
        };
        let request = WorkRequest {
            job: execution.job.clone(),
            dir: seen_dir
                .join("requests")
                .join(&execution.job)
                .to_string_lossy()
                .into_owned(),
            env: execution
                .env
                .iter()
                .chain(&execution.secrets)
                .cloned()
                .collect(),
            timeout_secs: execution.timeout.as_secs().max(1),
            memory: execution.memory,
        };
        let mut line = serde_json::to_string(&request).unwrap_or_default();
        line.push('\n');
        let (reader, mut writer) = connection.into_split();
        let answered = async {
            writer
                .write_all(line.as_bytes())
                .await
                .map_err(|e| format!("cannot reach the warm worker: {e}"))?;
            let mut answer = String::new();
            tokio::io::BufReader::new(reader)
                .read_line(&mut answer)
                .await
                .map_err(|e| format!("lost the warm worker: {e}"))?;
            if answer != DONE {
                return Err("the warm worker ended during the request".to_string());
            }
            Ok(())
        };
        let limit = execution.timeout + GRACE;
        let (result, answered) = match tokio::time::timeout(limit, answered).await {
            Ok(Ok(())) => match requests.move_out(&execution.job, &staged) {
                Ok(()) => {
                    let done =
                        read_finished(staged.clone(), execution.sync, "a warm worker".into());
                    (done.await, true)
                }
                Err(e) => (
                    Err(format!("the warm worker lost the request's directory: {e}")),
                    false,
                ),
            },
            Ok(Err(reason)) => (Err(reason), false),
            Err(_) => (Ok(timed_out(limit)), false),
        };
        // A worker that did not answer is started afresh, which removes its files.
        if let Err(err) = tokio::fs::remove_dir_all(&staged).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(job = %execution.job, %err, "cannot remove the request's directory");
        }
        (result, answered)
    }
}

/// Where a warm worker's requests are laid out before they are moved in: beside its directory,
/// out of its reach.
pub fn staging_dir_of(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".staged");
    dir.with_file_name(name)
}

/// Lays out a request's files in `staged` and moves them into the worker's `requests` (in its
/// directory `dir`), which is returned; refused when the worker made `requests` anything but
/// a directory.
fn stage_request(dir: &Path, staged: &Path, execution: &Execution) -> Result<Beneath, String> {
    write_platform(staged, execution)
        .and_then(|()| std::fs::create_dir_all(staged.join("tmp")))
        .map_err(|e| format!("cannot prepare the request's directory: {e}"))?;
    let requests = Beneath::open(dir)
        .and_then(|dir| dir.dir("requests"))
        .map_err(|e| {
            format!("the warm worker's requests directory is not one ({e}): it starts again")
        })?;
    requests
        .move_in(staged, &execution.job)
        .map_err(|e| format!("cannot hand the request to the warm worker: {e}"))?;
    Ok(requests)
}

/// A started process's stdout and stderr, in one pipe.
pub type OutputPipe = tokio::net::unix::pipe::Receiver;

/// A started supervisor: its process, its process group (killed when this is dropped) and
/// its output.
struct Started {
    child: tokio::process::Child,
    group: ProcessGroup,
    output: OutputPipe,
}

fn start(mut command: Command) -> Result<Started, String> {
    let (output, writer) =
        std::io::pipe().map_err(|e| format!("cannot make the output pipe: {e}"))?;
    let writer_too = writer
        .try_clone()
        .map_err(|e| format!("cannot make the output pipe: {e}"))?;
    command.stdout(writer).stderr(writer_too);
    let output = tokio::net::unix::pipe::Receiver::from_owned_fd(output.into())
        .map_err(|e| format!("cannot read the output pipe: {e}"))?;
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start the supervisor: {e}"))?;
    // Our copies of the write end, so the pipe ends when the processes do.
    drop(command);
    let group = ProcessGroup(child.id());
    Ok(Started {
        child,
        group,
        output,
    })
}

/// The job's process group, killed when the run ends however it ends: also when the run is
/// dropped half-way because the job was stopped (the child's `kill_on_drop` reaches only the
/// supervisor, not the script it started).
struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        if let Some(pid) = self.0.take() {
            // SAFETY: plain syscall on the job's own process group.
            unsafe { libc::killpg(pid as i32, libc::SIGKILL) };
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// A synchronous job's response, in the job's directory beside its report.
const RESPONSE: &str = "response";

/// A job's files as it sees them: the platform's under `platform` (read-only in the sandbox),
/// its own under its directory `dir`.
struct JobFiles {
    config: PathBuf,
    providers: PathBuf,
    event: PathBuf,
    tmp: PathBuf,
    input: PathBuf,
    output: PathBuf,
    result: PathBuf,
    response: PathBuf,
}

impl JobFiles {
    fn seen(dir: &Path, platform: &Path) -> Self {
        Self {
            config: platform.join(slots::CONFIG),
            providers: platform.join(slots::PROVIDERS),
            event: platform.join(slots::EVENT),
            tmp: dir.join("tmp"),
            input: dir.join("input"),
            output: dir.join("output"),
            result: dir.join(slots::REPORT),
            response: dir.join(RESPONSE),
        }
    }
}

/// Writes a job's platform files under `platform` the way a pod sees its mounts (config with
/// the event, provider keys), over what the slot's previous job had there.
fn write_platform(platform: &Path, execution: &Execution) -> std::io::Result<()> {
    let (config, keys) = (platform.join(slots::CONFIG), platform.join(slots::KEYS));
    for path in [&config, &keys] {
        std::fs::create_dir_all(path)?;
    }
    let yaml = serde_norway::to_string(&execution.config).map_err(std::io::Error::other)?;
    write_over(&config.join("function_config.yaml"), yaml.as_bytes())?;
    write_over(&config.join("script.sh"), execution.script.as_bytes())?;
    let event = platform.join(slots::EVENT);
    match &execution.event {
        EventBody::Text(text) => write_over(&event, text.as_bytes())?,
        // Moved, not copied: the spool is in the data directory too. A copy when it is not.
        EventBody::File(spooled) => {
            if std::fs::rename(spooled, &event).is_err() {
                std::fs::copy(spooled, &event)?;
            }
        }
    }
    let (access_key, secret_key) = &execution.store_keys;
    write_over(&keys.join("accessKey"), access_key.as_bytes())?;
    write_over(&keys.join("secretKey"), secret_key.as_bytes())
}

/// Sends the supervisor's output to the log: the script's lines as the supervisor marked them,
/// anything else (the supervisor's own messages) as the platform's, timed now.
async fn forward(mut stream: impl AsyncRead + Unpin, log: LogSink) {
    let mut splitter = LineSplitter::with_limit(MAX_MARKED_LINE);
    let mut lines = Vec::new();
    let mut buffer = vec![0; 16 * 1024];
    let read_back = |lines: &mut Vec<String>| {
        lines
            .drain(..)
            .map(Line::from_marked_output)
            .collect::<Vec<_>>()
    };
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => splitter.push(&buffer[..read], &mut lines),
        }
        if !send_all(read_back(&mut lines), &log).await {
            return;
        }
    }
    lines.extend(splitter.finish());
    send_all(read_back(&mut lines), &log).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket the instance's own processes listen on is connected to; an instance's socket
    /// made a symlink to one another process listens on is refused.
    #[tokio::test]
    async fn only_a_socket_of_the_instances_own_processes_is_connected_to() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("own.sock");
        let _listener = tokio::net::UnixListener::bind(&own).unwrap();
        let socket = |path: &Path, pid| InstanceSocket {
            path: path.to_path_buf(),
            pid,
        };
        // This process listens: as the instance's first process, or as one it started.
        assert!(socket(&own, std::process::id()).connect().await.is_ok());
        // SAFETY: a plain syscall.
        let parent = unsafe { libc::getppid() } as u32;
        assert!(socket(&own, parent).connect().await.is_ok());
        // An instance started by this process, whose socket leads to this process's one.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let planted = dir.path().join("instance.sock");
        std::os::unix::fs::symlink(&own, &planted).unwrap();
        let refused = socket(&planted, child.id()).connect().await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied);
        child.kill().unwrap();
        let _ = child.wait();
    }
}
