//! The in-job supervisor (oscar-api.md §6.2-6.4): the same program runs a job as a local
//! process in embedded mode and inside a Kubernetes pod. It reads the event, downloads the
//! input, runs the script, uploads the outputs and reports what happened in a small JSON file
//! (the pod's termination message in Kubernetes) so the platform can tell a failing script
//! from a failing platform.

pub mod expose;
pub mod remote;
mod script;
mod serve;
pub mod storage;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;

use model::function::config::FunctionConfig;
use model::function::event::{self, Event};
use model::function::{Report, response};
use remote::Remote;

/// Where the supervisor finds its inputs; every path can be moved by an environment variable
/// so the local executor needs no fixed locations.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Holds `function_config.yaml` and `script.sh` (`OSCAR_CONFIG_DIR`, default `/oscar/config`).
    pub config_dir: PathBuf,
    /// Holds `<provider>/accessKey` and `secretKey` (`OSCAR_PROVIDERS_DIR`).
    pub providers_dir: PathBuf,
    /// `OSCAR_SCRIPT_TIMEOUT` in seconds; none by default.
    pub timeout: Option<Duration>,
    /// `OSCAR_SCRIPT_MEMORY_LIMIT` in bytes.
    pub memory: Option<u64>,
    /// `OSCAR_SCRIPT_PIDS_LIMIT`: processes the job may have at once (see [`script::Limits`]).
    pub pids: Option<usize>,
    /// `OSCAR_SCRIPT_DISK_LIMIT`: bytes the job's directory (where the supervisor starts) may
    /// hold.
    pub disk: Option<u64>,
    /// `OSCAR_VOLUME_PATH` and `OSCAR_VOLUME_LIMIT`: the service's volume as the job sees it,
    /// and the bytes it may hold.
    pub volume: Option<(PathBuf, u64)>,
    /// Where the [`Report`] goes (`OSCAR_RESULT_FILE`, default `/dev/termination-log` when it
    /// exists, as Kubernetes provides it).
    pub result_file: Option<PathBuf>,
    /// Where a synchronous response goes; none for asynchronous jobs.
    pub response: Option<ResponseSink>,
    /// Largest report in bytes (`OSCAR_RESULT_LIMIT`): Kubernetes keeps 4096 bytes of a
    /// termination message, so a longer report would be cut into invalid JSON.
    pub result_limit: Option<usize>,
    /// Whether the script's lines are written marked, as one stream (`OSCAR_LOG_MARKED`, set
    /// by the embedded executors: [`model::function::log`]).
    pub marked_log: bool,
    /// The job's variables when they are not this process's own (a warm worker's request).
    pub env: Vec<(String, String)>,
    /// `OSCAR_INPUT_DIR` and `OSCAR_OUTPUT_DIR`: empty directories the executor made for the
    /// job (and empties for its next one); else the supervisor makes its own in `$TMPDIR`.
    pub work_dirs: Option<(PathBuf, PathBuf)>,
}

/// Where a synchronous response goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseSink {
    /// A file the executor reads back (`OSCAR_RESPONSE_FILE`).
    File(PathBuf),
    /// Framed at the end of the job's log (`OSCAR_RESPONSE_IN_LOG=1`), for a pod whose
    /// files are gone when it ends: see [`response`].
    Log,
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &str| -> Result<Option<u64>, String> {
            var(name)
                .map(|v| {
                    v.parse()
                        .map_err(|_| format!("{name}: {v:?} is not a whole number"))
                })
                .transpose()
        };
        let termination_log = PathBuf::from("/dev/termination-log");
        Ok(Self {
            config_dir: var("OSCAR_CONFIG_DIR")
                .unwrap_or_else(|| "/oscar/config".into())
                .into(),
            providers_dir: var("OSCAR_PROVIDERS_DIR")
                .unwrap_or_else(|| "/var/run/secrets/providers".into())
                .into(),
            timeout: number("OSCAR_SCRIPT_TIMEOUT")?
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
            memory: number("OSCAR_SCRIPT_MEMORY_LIMIT")?.filter(|b| *b > 0),
            pids: number("OSCAR_SCRIPT_PIDS_LIMIT")?
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0),
            disk: number("OSCAR_SCRIPT_DISK_LIMIT")?.filter(|b| *b > 0),
            volume: var("OSCAR_VOLUME_PATH")
                .map(PathBuf::from)
                .zip(number("OSCAR_VOLUME_LIMIT")?),
            result_file: var("OSCAR_RESULT_FILE")
                .map(PathBuf::from)
                .or_else(|| termination_log.exists().then_some(termination_log)),
            response: match (var("OSCAR_RESPONSE_FILE"), var("OSCAR_RESPONSE_IN_LOG")) {
                (Some(file), _) => Some(ResponseSink::File(file.into())),
                (None, Some(_)) => Some(ResponseSink::Log),
                (None, None) => None,
            },
            result_limit: number("OSCAR_RESULT_LIMIT")?
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0),
            marked_log: var(model::function::log::MARKED_ENV).is_some(),
            env: Vec::new(),
            work_dirs: var("OSCAR_INPUT_DIR")
                .map(PathBuf::from)
                .zip(var("OSCAR_OUTPUT_DIR").map(PathBuf::from)),
        })
    }
}

/// Largest event passed to the script as `$EVENT`.
const EVENT_ENV_LIMIT: usize = 64 * 1024;

/// Runs one job to its end. Never panics on bad input: every problem becomes a report.
pub async fn supervise(settings: &Settings, raw_event: Vec<u8>) -> Report {
    let config = match FunctionConfig::read(&settings.config_dir.join("function_config.yaml")) {
        Ok(config) => config,
        Err(reason) => return Report::Error { reason },
    };
    let log = |line: &str| {
        if !config.quiet() {
            eprintln!("oscar-supervisor: {line}");
        }
    };
    let made;
    let (input_dir, output_dir) = match &settings.work_dirs {
        Some((input, output)) => (input.as_path(), output.as_path()),
        None => {
            made = match (
                tempfile::Builder::new().prefix("input-").tempdir(),
                tempfile::Builder::new().prefix("output-").tempdir(),
            ) {
                (Ok(input), Ok(output)) => (input, output),
                (Err(e), _) | (_, Err(e)) => {
                    return Report::Error {
                        reason: format!("cannot create the job's temporary directories: {e}"),
                    };
                }
            };
            (made.0.path(), made.1.path())
        }
    };
    let event = Event::parse(&raw_event);

    let mut env = settings.env.clone();
    env.extend([
        ("TMP_INPUT_DIR".to_string(), path_text(input_dir)),
        ("TMP_OUTPUT_DIR".to_string(), path_text(output_dir)),
    ]);
    // Linux refuses environment strings over 128 KiB; a whole file sent as the event is in
    // the input file anyway.
    if raw_event.len() <= EVENT_ENV_LIMIT {
        env.push((
            "EVENT".to_string(),
            String::from_utf8_lossy(&raw_event).into_owned(),
        ));
    } else {
        log(&format!(
            "the event ({} bytes) is too large for $EVENT; $INPUT_FILE_PATH holds it",
            raw_event.len()
        ));
    }
    match &event {
        Event::Storage(storage) => {
            env.push(("STORAGE_OBJECT_KEY".into(), storage.key.clone()));
            if let Some(time) = &storage.time {
                env.push(("EVENT_TIME".into(), time.clone()));
            }
            if !config.file_stage_in {
                let name = storage.key.rsplit('/').next().unwrap_or("input");
                let target = input_dir.join(name);
                log(&format!("downloading {}/{}", storage.bucket, storage.key));
                let remote = match Remote::connect(
                    Some(&settings.providers_dir),
                    &config,
                    &storage.provider,
                ) {
                    Ok(remote) => remote,
                    Err(reason) => return Report::Error { reason },
                };
                if let Err(failure) = remote
                    .download(&storage.bucket, &storage.key, &target)
                    .await
                {
                    return failure.report(Vec::new());
                }
                env.push(("INPUT_FILE_PATH".into(), path_text(&target)));
            }
        }
        Event::Unknown(payload) => {
            let target = input_dir.join(format!("event-file-{}", file_suffix()));
            if let Err(e) = std::fs::write(&target, event::payload_bytes(payload)) {
                return Report::Error {
                    reason: format!("cannot write the input file: {e}"),
                };
            }
            env.push(("INPUT_FILE_PATH".into(), path_text(&target)));
        }
    }

    // What bounds the script, in words, as the sandbox applies it (no cgroups assumed).
    let mut bounds = Vec::new();
    if let Some(bytes) = settings.memory {
        bounds.push(format!("memory {} MiB (RLIMIT_DATA)", bytes >> 20));
    }
    if let Some(pids) = settings.pids {
        bounds.push(format!("{pids} processes (watchdog)"));
    }
    if let Some(bytes) = settings.disk {
        bounds.push(format!("disk {} MiB (watchdog)", bytes >> 20));
    }
    if let Some((path, bytes)) = &settings.volume {
        bounds.push(format!(
            "volume at {} {} MiB (watchdog)",
            path.display(),
            bytes >> 20
        ));
    }
    if let Some(timeout) = settings.timeout {
        bounds.push(format!("{}s", timeout.as_secs()));
    }
    if bounds.is_empty() {
        log("running the script");
    } else {
        log(&format!(
            "running the script, limited to {}",
            bounds.join(", ")
        ));
    }
    let limits = script::Limits {
        timeout: settings.timeout,
        memory: settings.memory,
        pids: settings.pids,
        disk: settings
            .disk
            .and_then(|bytes| {
                Some(script::DiskLimit {
                    dir: std::env::current_dir().ok()?,
                    bytes,
                    what: "the job's directory".into(),
                    bound: "the job's disk limit",
                })
            })
            .into_iter()
            .chain(
                settings
                    .volume
                    .as_ref()
                    .map(|(path, bytes)| script::DiskLimit {
                        dir: path.clone(),
                        bytes: *bytes,
                        what: format!("the service's volume at {}", path.display()),
                        bound: "its size",
                    }),
            )
            .collect(),
    };
    let script = settings.config_dir.join("script.sh");
    let finished = match script::run(&script, &env, &limits, settings.marked_log).await {
        Ok(finished) => finished,
        Err(reason) => return Report::Error { reason },
    };
    let (stdout, failure) = match finished {
        script::Finished::Exited { code: 0, stdout } => (stdout, None),
        script::Finished::Exited { code, stdout } => (
            stdout,
            Some((Some(code), format!("the script exited with code {code}"))),
        ),
        script::Finished::Signalled { signal } => (
            Vec::new(),
            Some((
                Some(128 + signal),
                format!("the script was killed by signal {signal}"),
            )),
        ),
        script::Finished::Over(script::Limit::Processes(limit)) => (
            Vec::new(),
            Some((
                None,
                format!(
                    "the script had more than {limit} processes at once (the job's limit) and was stopped"
                ),
            )),
        ),
        script::Finished::Over(script::Limit::Disk(limit)) => (
            Vec::new(),
            Some((
                None,
                format!(
                    "{} grew past {} MiB ({}) and the script was stopped",
                    limit.what,
                    limit.bytes >> 20,
                    limit.bound
                ),
            )),
        ),
        script::Finished::TimedOut(limit) => (
            Vec::new(),
            Some((
                None,
                format!(
                    "the script ran longer than {}s and was stopped",
                    limit.as_secs()
                ),
            )),
        ),
    };

    // Outputs are uploaded whatever the exit code: partial results help debugging.
    let files = match files_under(output_dir) {
        Ok(files) => files,
        Err(reason) => return Report::Error { reason },
    };
    let mut outputs = Vec::new();
    for output in &config.output {
        let (bucket, _) = output.bucket_and_folder();
        let matching: Vec<_> = files.iter().filter(|f| output.accepts(f)).collect();
        if matching.is_empty() {
            continue;
        }
        let remote = match Remote::connect(
            Some(&settings.providers_dir),
            &config,
            &output.storage_provider,
        ) {
            Ok(remote) => remote,
            Err(reason) => return Report::Error { reason },
        };
        for relative in matching {
            let key = output.key_for(relative);
            log(&format!("uploading {bucket}/{key}"));
            if let Err(failure) = remote
                .upload(bucket, &key, &output_dir.join(relative))
                .await
            {
                return failure.report(outputs);
            }
            // Bucket names have no `:`, so a provider's prefix cannot be mistaken for one.
            outputs.push(match output.storage_provider.as_str() {
                "" | model::service::PLATFORM_STORE => format!("{bucket}/{key}"),
                provider => format!("{provider}:{bucket}/{key}"),
            });
        }
    }

    if let Some(sink) = &settings.response {
        let body = match &event {
            Event::Unknown(_) => response_body(output_dir, &files, stdout),
            Event::Storage(_) => Ok(stdout),
        };
        let written = body.and_then(|body| match sink {
            ResponseSink::File(path) => {
                std::fs::write(path, body).map_err(|e| format!("cannot write the response: {e}"))
            }
            ResponseSink::Log => {
                let mut out = std::io::stdout().lock();
                out.write_all(response::frame(&body).as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("cannot write the response: {e}"))
            }
        });
        if let Err(reason) = written {
            return Report::Error { reason };
        }
    }
    match failure {
        None => Report::Succeeded { outputs },
        Some((exit_code, reason)) => Report::Failed {
            exit_code,
            reason,
            outputs,
        },
    }
}

/// The synchronous reply (oscar-api.md §6.3 step 6): one output file base64-encoded, several
/// zipped then base64-encoded, none: what the script printed.
fn response_body(dir: &Path, files: &[String], stdout: Vec<u8>) -> Result<Vec<u8>, String> {
    let encode = |bytes: &[u8]| {
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into_bytes()
    };
    match files {
        [] => Ok(stdout),
        [one] => std::fs::read(dir.join(one))
            .map(|bytes| encode(&bytes))
            .map_err(|e| format!("cannot read output {one}: {e}")),
        several => {
            let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            for name in several {
                let bytes = std::fs::read(dir.join(name))
                    .map_err(|e| format!("cannot read output {name}: {e}"))?;
                archive
                    .start_file(name.as_str(), zip::write::SimpleFileOptions::default())
                    .and_then(|()| archive.write_all(&bytes).map_err(Into::into))
                    .map_err(|e| format!("cannot zip the outputs: {e}"))?;
            }
            let bytes = archive
                .finish()
                .map_err(|e| format!("cannot zip the outputs: {e}"))?
                .into_inner();
            Ok(encode(&bytes))
        }
    }
}

/// Every regular file under `dir`, as paths relative to it with `/` separators, sorted.
fn files_under(dir: &Path) -> Result<Vec<String>, String> {
    fn walk(base: &Path, dir: &Path, found: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(base, &entry.path(), found)?;
            } else if kind.is_file() {
                let path = entry.path();
                let relative = path.strip_prefix(base).unwrap_or(&path);
                found.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
        Ok(())
    }
    let mut found = Vec::new();
    walk(dir, dir, &mut found).map_err(|e| format!("cannot list the outputs: {e}"))?;
    found.sort();
    Ok(found)
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A name part for payload files that cannot collide between jobs in one directory.
fn file_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}-{:x}", std::process::id(), nanos)
}

/// The program: the event from `$EVENT`, else the file `$OSCAR_EVENT_FILE` names, else standard
/// input (the watchdog's way).
pub fn main() -> ExitCode {
    // `[server supervise] expose -- <command>`: an exposed service's instance.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .skip_while(|a| a == "supervise")
        .collect();
    if let [mode, dashes, command @ ..] = args.as_slice()
        && mode == "expose"
        && dashes == "--"
    {
        return expose::main(command);
    }
    if args.first().is_some_and(|mode| mode == "serve") {
        return serve::main();
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(reason) => return finish(None, None, Report::Error { reason }),
    };
    let event_file = std::env::var_os("OSCAR_EVENT_FILE").filter(|f| !f.is_empty());
    let raw_event = match (std::env::var_os("EVENT"), event_file) {
        (Some(event), _) => event.into_encoded_bytes(),
        (None, Some(file)) => match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(e) => {
                return finish(
                    settings.result_file.as_deref(),
                    settings.result_limit,
                    Report::Error {
                        reason: format!("cannot read the event from OSCAR_EVENT_FILE: {e}"),
                    },
                );
            }
        },
        (None, None) => {
            let mut buffer = Vec::new();
            if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut buffer) {
                return finish(
                    settings.result_file.as_deref(),
                    settings.result_limit,
                    Report::Error {
                        reason: format!("cannot read the event from standard input: {e}"),
                    },
                );
            }
            buffer
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return finish(
                settings.result_file.as_deref(),
                settings.result_limit,
                Report::Error {
                    reason: format!("cannot start: {e}"),
                },
            );
        }
    };
    let report = runtime.block_on(supervise(&settings, raw_event));
    finish(
        settings.result_file.as_deref(),
        settings.result_limit,
        report,
    )
}

fn finish(result_file: Option<&Path>, limit: Option<usize>, report: Report) -> ExitCode {
    write_report(result_file, limit, &report);
    ExitCode::from(report.exit_code())
}

/// Says why a job did not succeed, and writes its report where the platform reads it.
fn write_report(result_file: Option<&Path>, limit: Option<usize>, report: &Report) {
    match report {
        Report::Succeeded { .. } => {}
        Report::Failed { reason, .. } | Report::Error { reason } => {
            eprintln!("oscar-supervisor: {reason}");
        }
    }
    if let Some(path) = result_file {
        let (text, dropped) = report.to_json_within(limit.unwrap_or(usize::MAX));
        if dropped > 0 {
            eprintln!(
                "oscar-supervisor: the report lists the first outputs only; {dropped} more are named above"
            );
        }
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("oscar-supervisor: cannot write {}: {e}", path.display());
        }
    }
}
