//! The local executor of embedded mode: each job is a supervisor child process in a fresh
//! working directory and its own process group, killed as a group at its time limit, inside
//! the [`sandbox`](super::sandbox) when the host allows one. The service image is not used:
//! scripts run with the host's tools.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use model::function::Report;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::executor::{EventBody, Execution, Executor, Finished};
use super::logs::{LineSplitter, LogSink, send_all};
use super::sandbox::Sandbox;
use model::service::Service;

/// Time the supervisor gets beyond the script's limit to upload outputs and report.
const GRACE: Duration = Duration::from_secs(60);
/// Environment variables passed through from the server to jobs; nothing else leaks in.
const PASSED_THROUGH: &[&str] = &["PATH", "LANG", "LC_ALL", "TZ"];

pub struct LocalExecutor {
    /// The supervisor program and its leading arguments.
    pub supervisor: Vec<String>,
    /// Jobs' working directories go under it.
    pub work_root: PathBuf,
    /// None: jobs run as plain processes (see `OSCAR_ALLOW_UNSANDBOXED_JOBS`).
    pub sandbox: Option<Sandbox>,
}

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    async fn run(
        &self,
        _service: &Service,
        execution: Execution,
        log: LogSink,
    ) -> Result<Finished, String> {
        let dir = self.work_root.join(&execution.job);
        let result = self.run_in(&dir, &execution, log).await;
        if let Err(err) = tokio::fs::remove_dir_all(&dir).await {
            tracing::warn!(job = %execution.job, %err, "cannot remove the job's working directory");
        }
        result
    }
}

impl LocalExecutor {
    async fn run_in(
        &self,
        dir: &Path,
        execution: &Execution,
        log: LogSink,
    ) -> Result<Finished, String> {
        let files = prepare(dir, execution)
            .map_err(|e| format!("cannot prepare the job's working directory: {e}"))?;
        let (program, args) = self
            .supervisor
            .split_first()
            .ok_or("no supervisor program configured")?;
        let mut command = match &self.sandbox {
            Some(sandbox) => {
                let mut command = Command::new(sandbox.program());
                command.args(sandbox.arguments(dir, Path::new(program), args));
                command
            }
            None => {
                let mut command = Command::new(program);
                command.args(args);
                command
            }
        };
        command
            .current_dir(dir)
            .env_clear()
            .envs(
                PASSED_THROUGH
                    .iter()
                    .filter_map(|k| Some((*k, std::env::var(k).ok()?))),
            )
            .env("HOME", dir)
            .env("TMPDIR", &files.tmp)
            .envs(execution.env.iter().map(|(k, v)| (k, v)))
            .envs(execution.secrets.iter().map(|(k, v)| (k, v)))
            .env("OSCAR_CONFIG_DIR", &files.config)
            .env("OSCAR_PROVIDERS_DIR", &files.providers)
            .env("OSCAR_RESULT_FILE", &files.result)
            .env("OSCAR_EVENT_FILE", &files.event)
            .env(
                "OSCAR_SCRIPT_TIMEOUT",
                execution.timeout.as_secs().max(1).to_string(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if execution.sync {
            command.env("OSCAR_RESPONSE_FILE", &files.response);
        }
        if let Some(bytes) = execution.memory {
            command.env("OSCAR_SCRIPT_MEMORY_LIMIT", bytes.to_string());
        }
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                // A job never outlives the server that runs it (its lease will be taken over).
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start the supervisor {program}: {e}"))?;
        let pid = child.id();
        let out = tokio::spawn(forward(child.stdout.take(), log.clone()));
        let err = tokio::spawn(forward(child.stderr.take(), log));

        let limit = execution.timeout + GRACE;
        let status = match tokio::time::timeout(limit, child.wait()).await {
            Ok(status) => status.map_err(|e| format!("lost the supervisor process: {e}"))?,
            Err(_) => {
                if let Some(pid) = pid {
                    // SAFETY: plain syscall on the job's own process group.
                    unsafe { libc::killpg(pid as i32, libc::SIGKILL) };
                }
                let _ = child.wait().await;
                let _ = tokio::join!(out, err);
                return Ok(Finished {
                    report: Report::Failed {
                        exit_code: None,
                        reason: format!(
                            "the job ran longer than {}s and was stopped",
                            limit.as_secs()
                        ),
                        outputs: Vec::new(),
                    },
                    response: None,
                });
            }
        };
        // Processes the script left behind (or a killed supervisor's script) would hold the
        // output pipes open: the group ends with its supervisor.
        if let Some(pid) = pid {
            // SAFETY: plain syscall on the job's own process group.
            unsafe { libc::killpg(pid as i32, libc::SIGKILL) };
        }
        let _ = tokio::join!(out, err);
        let report = match tokio::fs::read(&files.result).await {
            Ok(bytes) => serde_json::from_slice::<Report>(&bytes)
                .map_err(|e| format!("the supervisor's report is unreadable: {e}"))?,
            Err(_) => {
                return Err(format!("the supervisor ended without a report ({status})"));
            }
        };
        let response = match (&report, execution.sync) {
            (Report::Succeeded { .. }, true) => tokio::fs::read(&files.response).await.ok(),
            _ => None,
        };
        Ok(Finished { report, response })
    }
}

struct JobFiles {
    config: PathBuf,
    providers: PathBuf,
    tmp: PathBuf,
    result: PathBuf,
    response: PathBuf,
    event: PathBuf,
}

/// Lays out the job directory the way a pod sees its mounts: config, provider keys (0600),
/// a temporary directory.
fn prepare(dir: &Path, execution: &Execution) -> std::io::Result<JobFiles> {
    let files = JobFiles {
        config: dir.join("config"),
        providers: dir.join("providers"),
        tmp: dir.join("tmp"),
        result: dir.join("result.json"),
        response: dir.join("response"),
        event: dir.join("event"),
    };
    let keys = files.providers.join("minio.default");
    for path in [&files.config, &keys, &files.tmp] {
        std::fs::create_dir_all(path)?;
    }
    let config = serde_norway::to_string(&execution.config).map_err(std::io::Error::other)?;
    std::fs::write(files.config.join("function_config.yaml"), config)?;
    std::fs::write(files.config.join("script.sh"), &execution.script)?;
    match &execution.event {
        EventBody::Text(text) => std::fs::write(&files.event, text)?,
        // Moved, not copied: the spool is in the data directory too. A copy when it is not.
        EventBody::File(spooled) => {
            if std::fs::rename(spooled, &files.event).is_err() {
                std::fs::copy(spooled, &files.event)?;
            }
        }
    }
    let (access_key, secret_key) = &execution.store_keys;
    for (name, value) in [("accessKey", access_key), ("secretKey", secret_key)] {
        let path = keys.join(name);
        std::fs::write(&path, value)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(files)
}

/// Sends a stream's lines to the log, each at most [`super::logs::MAX_LINE`] bytes.
async fn forward(stream: Option<impl AsyncRead + Unpin>, log: LogSink) {
    let Some(mut stream) = stream else { return };
    let mut splitter = LineSplitter::default();
    let mut lines = Vec::new();
    let mut buffer = vec![0; 16 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => splitter.push(&buffer[..read], &mut lines),
        }
        if !send_all(&mut lines, &log).await {
            return;
        }
    }
    lines.extend(splitter.finish());
    send_all(&mut lines, &log).await;
}
