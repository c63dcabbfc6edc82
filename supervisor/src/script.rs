//! Runs the service script: `/bin/sh script.sh` in its own process group (so a timeout kills
//! everything it started), its stdout and stderr read as they are written so their lines keep
//! their order, passed through to the job log (marked when the executor asks: [`log`]) and
//! stdout kept for the synchronous response.

use std::io::{PipeReader, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use model::Timestamp;
use model::function::log::{self, Line, LineSplitter, Stream};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
    /// Bytes directories may hold: the job's (`OSCAR_SCRIPT_DISK_LIMIT`, the directory the
    /// supervisor starts in) and its service's volume (`OSCAR_VOLUME_LIMIT`), checked by the
    /// same watchdog every [`DISK_EVERY`] and once more when the script ends.
    pub disk: Vec<DiskLimit>,
}

/// A directory and the bytes it may hold.
#[derive(Debug, Clone)]
pub struct DiskLimit {
    pub dir: PathBuf,
    pub bytes: u64,
    /// What it is, for the reason of a stopped script: "the job's directory".
    pub what: String,
    /// What sets the bound, in that reason: "the job's disk limit".
    pub bound: &'static str,
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
    /// More bytes in a directory than it may hold.
    Disk(DiskLimit),
}

/// Runs the script; `marked`: its lines go to stdout as [`Line::marked`], else its stdout
/// and stderr pass through unchanged.
pub async fn run(
    script: &Path,
    env: &[(String, String)],
    limits: &Limits,
    marked: bool,
) -> Result<Finished, String> {
    let mut command = Command::new("/bin/sh");
    command
        .arg(script)
        .env_remove(log::MARKED_ENV)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .kill_on_drop(true);
    // Python writes stdout in blocks when it is not a terminal, so a script's prints would
    // come after its traceback; line by line unless the service says otherwise.
    let unbuffered = "PYTHONUNBUFFERED";
    if std::env::var_os(unbuffered).is_none() && !env.iter().any(|(k, _)| k == unbuffered) {
        command.env(unbuffered, "1");
    }
    let memory = limits.memory;
    // SAFETY: only async-signal-safe calls (prctl, setrlimit) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // The script dies with the supervisor, whatever kills it.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            match memory {
                Some(bytes) => limit_data(bytes),
                None => Ok(()),
            }
        });
    }
    let pipe = |e: std::io::Error| format!("cannot make the script's output pipes: {e}");
    let (stdout, out_writer) = std::io::pipe().map_err(pipe)?;
    let (stderr, err_writer) = std::io::pipe().map_err(pipe)?;
    command
        .stdin(Stdio::null())
        .stdout(out_writer)
        .stderr(err_writer);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start /bin/sh {}: {e}", script.display()))?;
    // Our copies of the write ends, so each pipe ends when the script's processes are done.
    drop(command);
    let pid = child.id();
    let output = pump(stdout, stderr, marked);

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
    // What the script left running ends with it: it would hold the output pipes open, and a
    // warm worker's next request must not meet it.
    kill_group();
    let stdout = output.await.unwrap_or_default();
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

/// Limits this process's data segment (heap and private mappings) to `bytes`, for it and
/// what it starts. Async-signal-safe: it runs between fork and exec.
pub fn limit_data(bytes: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: plain syscall on this process's own limits.
    if unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Returns the limit the job passes first; never without limits.
async fn watchdog(limits: &Limits) -> Limit {
    if limits.pids.is_none() && limits.disk.is_empty() {
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

/// The first disk limit a directory holds more than.
fn over_disk(limits: &Limits) -> Option<Limit> {
    limits
        .disk
        .iter()
        .find(|disk| bytes_under(&disk.dir) > disk.bytes)
        .cloned()
        .map(Limit::Disk)
}

/// Bytes of the files under `dir` (links not followed).
pub(crate) fn bytes_under(dir: &Path) -> u64 {
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

/// A piece of the script's output as a reader got it, with when.
type Chunk = (Stream, Timestamp, Vec<u8>);

/// Chunks waiting for the writer; past this the readers wait, and so does the script.
const CHUNKS_WAITING: usize = 64;

/// Copies the script's stdout and stderr through as they come; returns (a bounded amount of)
/// stdout. Each pipe has a thread blocked reading it, so the kernel wakes each reader as its
/// pipe is written and they queue their chunks in about the order the script wrote them; a
/// single loop polling both pipes would see two ready pipes and could only guess.
fn pump(stdout: PipeReader, stderr: PipeReader, marked: bool) -> JoinHandle<Vec<u8>> {
    let (chunks, mut read) = mpsc::channel::<Chunk>(CHUNKS_WAITING);
    for (pipe, stream) in [(stdout, Stream::Out), (stderr, Stream::Err)] {
        let chunks = chunks.clone();
        std::thread::spawn(move || read_pipe(pipe, stream, &chunks));
    }
    drop(chunks);
    tokio::spawn(async move {
        let mut kept = Vec::new();
        let mut writer = Writer {
            marked,
            splitters: [LineSplitter::default(), LineSplitter::default()],
            lines: Vec::new(),
            stdout: tokio::io::stdout(),
            stderr: tokio::io::stderr(),
        };
        while let Some((stream, at, chunk)) = read.recv().await {
            if stream == Stream::Out && kept.len() < RESPONSE_LIMIT {
                kept.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_LIMIT - kept.len())]);
            }
            writer.write(stream, at, &chunk).await;
        }
        writer.finish().await;
        kept
    })
}

/// Reads one of the script's pipes to its end, timing each chunk as it is read.
fn read_pipe(mut pipe: PipeReader, stream: Stream, chunks: &mpsc::Sender<Chunk>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if chunks
                    .blocking_send((stream, Timestamp::now(), buffer[..n].to_vec()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Where the script's output goes: through unchanged, or as marked lines on stdout.
struct Writer {
    marked: bool,
    /// stdout's and stderr's unfinished lines.
    splitters: [LineSplitter; 2],
    lines: Vec<String>,
    stdout: tokio::io::Stdout,
    stderr: tokio::io::Stderr,
}

impl Writer {
    async fn write(&mut self, stream: Stream, at: Timestamp, chunk: &[u8]) {
        if !self.marked {
            let to: &mut (dyn AsyncWrite + Unpin + Send) = match stream {
                Stream::Out => &mut self.stdout,
                Stream::Err | Stream::Platform => &mut self.stderr,
            };
            let _ = to.write_all(chunk).await;
            let _ = to.flush().await;
            return;
        }
        // The script has two streams; the platform's lines never come through here.
        self.splitters[usize::from(stream != Stream::Out)].push(chunk, &mut self.lines);
        self.send(stream, at).await;
    }

    /// The marked lines of `stream` completed so far, read at `at`.
    async fn send(&mut self, stream: Stream, at: Timestamp) {
        if self.lines.is_empty() {
            return;
        }
        let mut text = String::new();
        for text_line in self.lines.drain(..) {
            let line = Line {
                at,
                stream,
                text: text_line,
            };
            text.push_str(&line.marked());
        }
        let _ = self.stdout.write_all(text.as_bytes()).await;
        let _ = self.stdout.flush().await;
    }

    /// Lines left without a newline when the script ended.
    async fn finish(mut self) {
        let [out, err] = std::mem::take(&mut self.splitters);
        for (stream, splitter) in [(Stream::Out, out), (Stream::Err, err)] {
            self.lines.extend(splitter.finish());
            self.send(stream, Timestamp::now()).await;
        }
    }
}
