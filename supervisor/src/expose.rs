//! Expose mode: an exposed service's server, run in its instance's sandbox. The sandbox has a
//! network of its own, so every instance listens on its image's port (80 included) without
//! meeting another; the platform reaches it through a Unix socket in the instance's directory
//! (`OSCAR_EXPOSE_SOCKET`), whose connections this program joins to the server's port
//! (`OSCAR_EXPOSE_PORT`) on the sandbox's loopback, byte for byte (WebSockets included). It
//! ends with the server, with its exit status, so the platform sees the instance end. The
//! service's volume (`OSCAR_VOLUME_PATH`, `OSCAR_VOLUME_LIMIT`) is kept to its size as a
//! job's: a server that fills it past its size is stopped, saying so.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::process::Command;

/// Variables of this mode, not passed on to the server.
const SOCKET_ENV: &str = "OSCAR_EXPOSE_SOCKET";
const PORT_ENV: &str = "OSCAR_EXPOSE_PORT";
const MEMORY_ENV: &str = "OSCAR_SCRIPT_MEMORY_LIMIT";
/// The image's working directory (where its own command expects to start).
const WORKDIR_ENV: &str = "OSCAR_EXPOSE_WORKDIR";
const VOLUME_ENV: &str = "OSCAR_VOLUME_PATH";
const VOLUME_LIMIT_ENV: &str = "OSCAR_VOLUME_LIMIT";
/// How often the volume is measured.
const VOLUME_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs `command` and bridges the socket to its port until it exits.
pub fn main(command: &[String]) -> ExitCode {
    match run(command) {
        Ok(code) => code,
        Err(reason) => {
            eprintln!("oscar-supervisor: {reason}");
            ExitCode::from(125)
        }
    }
}

fn run(command: &[String]) -> Result<ExitCode, String> {
    let socket = std::env::var_os(SOCKET_ENV)
        .map(PathBuf::from)
        .ok_or(format!("{SOCKET_ENV} is not set"))?;
    let port: u16 = std::env::var(PORT_ENV)
        .ok()
        .and_then(|p| p.parse().ok())
        .ok_or(format!("{PORT_ENV} is not a port"))?;
    let (program, args) = command.split_first().ok_or("no command to run")?;
    if let Some(bytes) = std::env::var(MEMORY_ENV).ok().and_then(|b| b.parse().ok()) {
        // The server's limit, as a script's (`script::Limits::memory`), inherited by all it
        // starts.
        crate::script::limit_data(bytes).map_err(|e| format!("cannot limit memory: {e}"))?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    runtime.block_on(async {
        let listener = listen(&socket)?;
        let mut command = Command::new(program);
        if let Some(dir) = std::env::var_os(WORKDIR_ENV).filter(|d| !d.is_empty()) {
            command.current_dir(dir);
        }
        let mut child = command
            .args(args)
            .env_remove(SOCKET_ENV)
            .env_remove(PORT_ENV)
            .env_remove(MEMORY_ENV)
            .env_remove(WORKDIR_ENV)
            .env_remove(VOLUME_ENV)
            .env_remove(VOLUME_LIMIT_ENV)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let status = tokio::select! {
            status = child.wait() => status.map_err(|e| format!("lost {program}: {e}"))?,
            never = bridge(listener, port) => match never {},
            over = over_volume() => {
                let _ = child.kill().await;
                return Err(over);
            }
        };
        eprintln!("oscar-supervisor: the server exited ({status})");
        Ok(ExitCode::from(status.code().map_or(128, |c| c as u8)))
    })
}

/// Why the server must stop: its volume holds more than it may; never without a volume.
async fn over_volume() -> String {
    let dir = std::env::var_os(VOLUME_ENV).map(PathBuf::from);
    let limit = std::env::var(VOLUME_LIMIT_ENV)
        .ok()
        .and_then(|b| b.parse::<u64>().ok());
    let (Some(dir), Some(limit)) = (dir, limit) else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(VOLUME_EVERY).await;
        // A walk of the volume: off the thread that bridges the connections.
        let measured = dir.clone();
        let bytes = tokio::task::spawn_blocking(move || crate::script::bytes_under(&measured))
            .await
            .unwrap_or(0);
        if bytes > limit {
            return format!(
                "the volume at {} holds more than its {} MiB: the server was stopped",
                dir.display(),
                limit >> 20
            );
        }
    }
}

/// Listens on `socket`, replacing what a previous run left there.
pub(crate) fn listen(socket: &Path) -> Result<UnixListener, String> {
    let _ = std::fs::remove_file(socket);
    UnixListener::bind(socket).map_err(|e| format!("cannot listen on {}: {e}", socket.display()))
}

/// Accepts the platform's connections for ever, each joined to the server's port.
async fn bridge(listener: UnixListener, port: u16) -> std::convert::Infallible {
    loop {
        let Ok((connection, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(join(connection, port));
    }
}

/// One connection: the server may listen on IPv4, IPv6 or both. Closed without a byte when
/// it does not listen (yet): the platform tells that from an answer.
async fn join(mut connection: UnixStream, port: u16) {
    let server = match TcpStream::connect(("127.0.0.1", port)).await {
        Ok(server) => server,
        Err(_) => match TcpStream::connect(("::1", port)).await {
            Ok(server) => server,
            Err(_) => return,
        },
    };
    let _ = server.set_nodelay(true);
    let mut server = server;
    let _ = tokio::io::copy_bidirectional(&mut connection, &mut server).await;
}
