//! A warm worker on Kubernetes: a pod of the service's worker Deployment, listening on
//! `OSCAR_SERVE_ADDRESS`. It shares no files with the platform, so each request
//! ([`ClusterWork`]) carries the job's files and event, and the answer carries its output,
//! response and report as [`Frame`]s. One request at a time: another connection meanwhile is
//! answered [`Frame::Busy`] before its event is sent, so the platform can try another pod. Each request runs as
//! a fresh supervisor process (what a job's pod runs), so its output, limits and variables are
//! its own; what stays warm is the pod: image pulled, container started, scheduled. A request
//! the platform gives up half-way (stopped, timed out) ends the worker, as in embedded mode:
//! the pod starts afresh, with nothing of it left running. Asked to stop (SIGTERM: a
//! scale-down, a rollout), the worker takes no more requests and ends once the one it runs
//! has.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use model::function::Report;
use model::function::log::MARKED_ENV;
use model::function::work::{ClusterWork, Frame, MAX_FRAME};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Where the worker listens (`0.0.0.0:<port>`).
pub const ADDRESS_ENV: &str = "OSCAR_SERVE_ADDRESS";
/// The token requests must carry (from the service's worker Secret).
const TOKEN_ENV: &str = "OSCAR_SERVE_TOKEN";
/// Longest request line: the configuration and the script.
const HEADER_LIMIT: u64 = 8 << 20;
/// How long a connection may take to send its request line, and then its event: a peer that
/// stalls cannot hold the worker.
const HEADER_WITHIN: Duration = Duration::from_secs(30);
const EVENT_WITHIN: Duration = Duration::from_secs(300);
/// Connections served at once (all but one are answered Busy or refused at once).
const CONNECTIONS: usize = 64;
/// Pod-level settings of a job's pod that a request's supervisor must not take.
const NOT_PASSED: &[&str] = &[ADDRESS_ENV, TOKEN_ENV, "OSCAR_RESPONSE_IN_LOG"];

pub fn run(address: &str) -> Result<(), String> {
    let token: Arc<str> = std::env::var(TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or(format!("{TOKEN_ENV} is not set"))?
        .into();
    let program = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        let busy = Arc::new(tokio::sync::Mutex::new(()));
        let connections = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
        let mut stop = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
        loop {
            let connection = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.recv() => {
                    // The request running now ends first.
                    let _idle = busy.lock().await;
                    return Ok(());
                }
            };
            let Ok((connection, _)) = connection else {
                continue;
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                continue;
            };
            let _ = connection.set_nodelay(true);
            let (token, busy, program) = (token.clone(), busy.clone(), program.clone());
            tokio::spawn(async move {
                serve(connection, &token, &busy, &program).await;
                drop(permit);
            });
        }
    })
}

async fn serve(connection: TcpStream, token: &str, busy: &tokio::sync::Mutex<()>, program: &Path) {
    let (reader, mut writer) = connection.into_split();
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    // The readiness probe connects and leaves.
    let mut limited = (&mut reader).take(HEADER_LIMIT);
    match tokio::time::timeout(HEADER_WITHIN, limited.read_line(&mut line)).await {
        Ok(Ok(read)) if read > 0 => {}
        _ => return,
    }
    let work: ClusterWork = match serde_json::from_str(&line) {
        Ok(work) => work,
        Err(e) => return refuse(&mut writer, format!("an unreadable request: {e}")).await,
    };
    if !same(work.token.as_bytes(), token.as_bytes()) {
        return refuse(
            &mut writer,
            "the request's token is not this worker's".into(),
        )
        .await;
    }
    if !is_plain_name(&work.job) {
        return refuse(&mut writer, format!("{:?} is not a job name", work.job)).await;
    }
    let Ok(_one) = busy.try_lock() else {
        let _ = writer.write_all(&Frame::Busy.encode()).await;
        return;
    };
    if writer.write_all(&Frame::Accepted.encode()).await.is_err() {
        return;
    }
    let dir = std::env::temp_dir().join("oscar-requests").join(&work.job);
    let prepared = match tokio::time::timeout(EVENT_WITHIN, prepare(&dir, &work, &mut reader)).await
    {
        Ok(prepared) => prepared,
        Err(_) => Err("the request's event did not arrive in time".into()),
    };
    let report = match prepared {
        Ok(()) => run_job(program, &dir, &work, reader.into_inner(), &mut writer).await,
        Err(reason) => Err(reason),
    }
    .unwrap_or_else(|reason| {
        let report = Report::Error { reason };
        serde_json::to_vec(&report).unwrap_or_default()
    });
    let _ = writer.write_all(&Frame::Report(report).encode()).await;
    let _ = writer.shutdown().await;
    let _ = tokio::fs::remove_dir_all(&dir).await;
}

async fn refuse(writer: &mut OwnedWriteHalf, reason: String) {
    eprintln!("oscar-supervisor: refused a request: {reason}");
    let _ = writer.write_all(&Frame::Refused(reason).encode()).await;
}

/// Compares without stopping at the first difference, so timing tells nothing of the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

/// A job's name as the platform makes them: it names a directory, so no `/` and no dots
/// first.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Lays the job's files out as a job's pod has them, the event read from the connection.
async fn prepare(
    dir: &Path,
    work: &ClusterWork,
    reader: &mut (impl AsyncRead + Unpin),
) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("cannot prepare the request's files: {e}");
    let _ = tokio::fs::remove_dir_all(dir).await;
    let keys = dir.join("providers").join("minio.default");
    for made in [dir.join("config"), keys.clone(), dir.join("work")] {
        tokio::fs::create_dir_all(made).await.map_err(failed)?;
    }
    let config = dir.join("config");
    let files = [
        (config.join("function_config.yaml"), &work.config),
        (config.join("script.sh"), &work.script),
        (keys.join("accessKey"), &work.access_key),
        (keys.join("secretKey"), &work.secret_key),
    ];
    for (path, text) in files {
        // Readable by the job's user only, as a job's files are.
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .await
            .map_err(failed)?;
        file.write_all(text.as_bytes()).await.map_err(failed)?;
    }
    let mut event = tokio::fs::File::create(dir.join("event"))
        .await
        .map_err(failed)?;
    let copied = tokio::io::copy(&mut reader.take(work.event_len), &mut event)
        .await
        .map_err(|e| format!("cannot read the request's event: {e}"))?;
    if copied != work.event_len {
        return Err("the request ended before its event did".into());
    }
    Ok(())
}

/// Runs the job as a job's pod does, its output sent as it comes; the report's JSON.
async fn run_job(
    program: &Path,
    dir: &Path,
    work: &ClusterWork,
    mut platform: OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
) -> Result<Vec<u8>, String> {
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let (output, out) = std::io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot make a pipe: {e}"))?;
    let mut command = tokio::process::Command::new(program);
    command.arg("supervise");
    for name in NOT_PASSED {
        command.env_remove(name);
    }
    command
        .envs(work.env.iter().map(|(k, v)| (k, v)))
        .env("OSCAR_CONFIG_DIR", path("config"))
        .env("OSCAR_PROVIDERS_DIR", path("providers"))
        .env("OSCAR_EVENT_FILE", path("event"))
        .env("OSCAR_RESULT_FILE", path("result.json"))
        .env("OSCAR_RESPONSE_FILE", path("response"))
        .env("OSCAR_SCRIPT_TIMEOUT", work.timeout_secs.max(1).to_string())
        // The report goes back in one frame.
        .env("OSCAR_RESULT_LIMIT", (MAX_FRAME - 64).to_string())
        .env(MARKED_ENV, "1")
        .current_dir(dir.join("work"))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
    match work.memory {
        Some(bytes) => command.env("OSCAR_SCRIPT_MEMORY_LIMIT", bytes.to_string()),
        None => command.env_remove("OSCAR_SCRIPT_MEMORY_LIMIT"),
    };
    let mut output = tokio::net::unix::pipe::Receiver::from_owned_fd(output.into())
        .map_err(|e| format!("cannot read a pipe: {e}"))?;
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start the supervisor: {e}"))?;
    // Our copies of the pipe's write end, so it ends with the process.
    drop(command);
    let mut buffer = vec![0; 64 * 1024];
    let mut probe = [0; 1];
    loop {
        let read = tokio::select! {
            read = output.read(&mut buffer) => read,
            // The platform sends nothing more: a read ends only when it has gone.
            _ = platform.read(&mut probe) => given_up(),
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                let sent = writer
                    .write_all(&Frame::Output(buffer[..read].to_vec()).encode())
                    .await;
                if sent.is_err() {
                    given_up();
                }
            }
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("lost the supervisor: {e}"))?;
    send_response(&dir.join("response"), writer).await;
    tokio::fs::read(dir.join("result.json"))
        .await
        .map_err(|_| format!("the supervisor ended without a report ({status})"))
}

/// The platform gave the request up (stopped, timed out, lost): the worker ends with all it
/// started, and its pod starts it afresh.
fn given_up() -> ! {
    eprintln!("oscar-supervisor: the platform gave the request up; the worker starts afresh");
    std::process::exit(1)
}

/// The response file in frames, when the job wrote one.
async fn send_response(file: &PathBuf, writer: &mut OwnedWriteHalf) {
    let Ok(mut file) = tokio::fs::File::open(file).await else {
        return;
    };
    let mut buffer = vec![0; 256 * 1024];
    while let Ok(read) = file.read(&mut buffer).await
        && read > 0
    {
        if writer
            .write_all(&Frame::Response(buffer[..read].to_vec()).encode())
            .await
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_job_names_name_a_directory() {
        assert!(is_plain_name("svc-1a2b"));
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
    }
}
