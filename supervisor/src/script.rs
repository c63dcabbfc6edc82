//! Runs the service script: `/bin/sh script.sh` in its own process group (so a timeout kills
//! everything it started), output passed through to the job log and stdout kept for the
//! synchronous response.

use std::path::Path;
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
}

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

    let status = match limits.timeout {
        Some(limit) => tokio::time::timeout(limit, child.wait()).await.ok(),
        None => Some(child.wait().await),
    };
    let Some(status) = status else {
        if let Some(pid) = pid {
            // SAFETY: plain syscall; the group is the script's own (process_group(0)).
            unsafe { libc::killpg(pid as i32, libc::SIGKILL) };
        }
        let _ = child.wait().await;
        return Ok(Finished::TimedOut(limits.timeout.unwrap_or_default()));
    };
    let status = status.map_err(|e| format!("cannot wait for the script: {e}"))?;
    let stdout = copy_out.await.unwrap_or_default();
    let _ = copy_err.await;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => Finished::Exited { code, stdout },
        (None, Some(signal)) => Finished::Signalled { signal },
        (None, None) => Finished::Signalled { signal: 0 },
    })
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
