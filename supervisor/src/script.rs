//! Runs the service script: `/bin/sh script.sh` in its own process group (so a timeout kills
//! everything it started), output passed through to the job log and stdout kept for the
//! synchronous response.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::Command;

/// How much of the script's stdout a synchronous response may carry.
const RESPONSE_LIMIT: usize = 64 * 1024 * 1024;

pub struct Limits {
    pub timeout: Option<Duration>,
    /// Data-segment limit for the script, in bytes (RLIMIT_DATA: heap and private mappings,
    /// close to what a container memory limit counts; RLIMIT_AS would also count the
    /// address space runtimes reserve without using it).
    pub memory: Option<u64>,
    /// Processes the job may have at once (`OSCAR_SCRIPT_PIDS_LIMIT`), counted in `/proc`: set
    /// only where the job has a PID namespace of its own (the sandbox), whose `/proc` shows
    /// its processes alone. Without cgroups a limit cannot stop a fork, so a watchdog stops
    /// the script once it is passed.
    pub pids: Option<usize>,
    /// Bytes the job's directory may hold (`OSCAR_SCRIPT_DISK_LIMIT`, the directory the
    /// supervisor starts in), checked by the same watchdog every [`DISK_EVERY`] and once
    /// more when the script ends.
    pub disk: Option<(PathBuf, u64)>,
}

/// How often the disk watchdog measures the job's directory.
const DISK_EVERY: u32 = 10;

/// How often the pids watchdog counts; a fork bomb gets this long.
const PIDS_EVERY: Duration = Duration::from_millis(20);

pub enum Finished {
    Exited {
        code: i32,
        stdout: Vec<u8>,
    },
    /// Killed by a signal (e.g. the out-of-memory killer).
    Signalled {
        signal: i32,
    },
    TimedOut(Duration),
    /// Stopped by the watchdog for passing a limit.
    Over(Limit),
}

/// A limit the watchdog keeps.
pub enum Limit {
    /// More processes at once than this.
    Processes(usize),
    /// More bytes in the job's directory than this.
    Disk(u64),
}

pub async fn run(
    script: &Path,
    env: &[(String, String)],
    limits: &Limits,
) -> Result<Finished, String> {
    let mut command = Command::new("/bin/sh");
    command
        .arg(script)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let memory = limits.memory;
    // SAFETY: only async-signal-safe calls (prctl, setrlimit) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // The script dies with the supervisor, whatever kills it.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if let Some(bytes) = memory {
                let limit = libc::rlimit {
                    rlim_cur: bytes as libc::rlim_t,
                    rlim_max: bytes as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start /bin/sh {}: {e}", script.display()))?;
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let copy_out = tokio::spawn(tee(stdout, tokio::io::stdout(), true));
    let copy_err = tokio::spawn(tee(stderr, tokio::io::stderr(), false));

    let kill_group = || {
        if let Some(pid) = pid {
            // SAFETY: plain syscall; the group is the script's own (process_group(0)).
            unsafe { libc::killpg(pid as i32, libc::SIGKILL) };
        }
    };
    let waited = async {
        match limits.timeout {
            Some(limit) => tokio::time::timeout(limit, child.wait()).await.ok(),
            None => Some(child.wait().await),
        }
    };
    let status = tokio::select! {
        status = waited => status,
        limit = watchdog(limits) => {
            // Forks racing the kill land in the group too: kill until it is gone.
            for _ in 0..100 {
                kill_group();
                if processes() <= 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = child.wait().await;
            return Ok(Finished::Over(limit));
        }
    };
    let Some(status) = status else {
        kill_group();
        let _ = child.wait().await;
        return Ok(Finished::TimedOut(limits.timeout.unwrap_or_default()));
    };
    let status = status.map_err(|e| format!("cannot wait for the script: {e}"))?;
    let stdout = copy_out.await.unwrap_or_default();
    let _ = copy_err.await;
    // A script that fills its directory faster than the watchdog looks still fails.
    if let Some(over) = over_disk(limits) {
        return Ok(Finished::Over(over));
    }
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => Finished::Exited { code, stdout },
        (None, Some(signal)) => Finished::Signalled { signal },
        (None, None) => Finished::Signalled { signal: 0 },
    })
}

/// Returns the limit the job passes first; never without limits.
async fn watchdog(limits: &Limits) -> Limit {
    if limits.pids.is_none() && limits.disk.is_none() {
        return std::future::pending().await;
    }
    for tick in 1u32.. {
        tokio::time::sleep(PIDS_EVERY).await;
        if let Some(limit) = limits.pids
            && processes() > limit
        {
            return Limit::Processes(limit);
        }
        if tick % DISK_EVERY == 0
            && let Some(over) = over_disk(limits)
        {
            return over;
        }
    }
    std::future::pending().await
}

/// The disk limit, when the job's directory holds more than it.
fn over_disk(limits: &Limits) -> Option<Limit> {
    let (dir, limit) = limits.disk.as_ref()?;
    (bytes_under(dir) > *limit).then_some(Limit::Disk(*limit))
}

/// Bytes of the files under `dir` (links not followed).
fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => pending.push(entry.path()),
                Ok(meta) => total += meta.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Processes in this PID namespace.
fn processes() -> usize {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .count()
        })
        .unwrap_or(0)
}

/// Copies a stream through, keeping (a bounded amount of) it when asked.
async fn tee(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    keep: bool,
) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = to.write_all(&buffer[..n]).await;
                let _ = to.flush().await;
                if keep && kept.len() < RESPONSE_LIMIT {
                    kept.extend_from_slice(&buffer[..n.min(RESPONSE_LIMIT - kept.len())]);
                }
            }
        }
    }
    kept
}
