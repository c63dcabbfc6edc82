//! Serve mode: a warm worker of a synchronous service (`synchronous.min_scale`). Started once
//! in the service's sandbox and image, it takes one request at a time on its socket
//! ([`model::function::work`]) and runs each as the supervisor runs a job, without the
//! sandbox's and the supervisor's start-up on every `/run`. On Kubernetes it is a pod of the
//! service's worker Deployment instead, taking requests over TCP ([`cluster`]).

mod cluster;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use model::function::work::{DONE, WorkRequest, done_line};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::{ResponseSink, Settings, supervise, write_report};

const SOCKET_ENV: &str = "OSCAR_SERVE_SOCKET";

pub fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("oscar-supervisor: {reason}");
            ExitCode::from(125)
        }
    }
}

fn run() -> Result<(), String> {
    if let Some(address) = std::env::var(cluster::ADDRESS_ENV)
        .ok()
        .filter(|a| !a.is_empty())
    {
        return cluster::run(&address);
    }
    let socket = std::env::var_os(SOCKET_ENV)
        .map(PathBuf::from)
        .ok_or(format!("{SOCKET_ENV} is not set"))?;
    let base = Settings::from_env()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    runtime.block_on(async {
        let listener = crate::expose::listen(&socket)?;
        loop {
            let (connection, _) = listener
                .accept()
                .await
                .map_err(|e| format!("cannot accept a request: {e}"))?;
            // One at a time: the platform sends a worker one request and waits for it.
            serve(&base, connection).await;
        }
    })
}

async fn serve(base: &Settings, connection: UnixStream) {
    let (reader, mut writer) = connection.into_split();
    let mut line = String::new();
    // The platform's readiness check connects and leaves.
    if BufReader::new(reader).read_line(&mut line).await.is_err() || line.trim().is_empty() {
        return;
    }
    let request: WorkRequest = match serde_json::from_str(&line) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("oscar-supervisor: an unreadable request: {e}");
            return;
        }
    };
    let dir = Path::new(&request.dir);
    let settings = Settings {
        config_dir: dir.join("config"),
        providers_dir: dir.join("providers"),
        timeout: Some(Duration::from_secs(request.timeout_secs.max(1))),
        memory: request.memory,
        result_file: Some(dir.join("result.json")),
        response: Some(ResponseSink::File(dir.join("response"))),
        env: request.env.clone(),
        // A worker's own `$TMPDIR` lives on between requests: each gets directories afresh.
        work_dirs: None,
        ..base.clone()
    };
    let report = match std::fs::read(settings.config_dir.join("event")) {
        Ok(event) => supervise(&settings, event).await,
        Err(e) => model::function::Report::Error {
            reason: format!("cannot read the request's event: {e}"),
        },
    };
    write_report(
        settings.result_file.as_deref(),
        settings.result_limit,
        &report,
    );
    eprintln!("{}", done_line(&request.job));
    let _ = writer.write_all(DONE.as_bytes()).await;
}
