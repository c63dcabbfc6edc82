//! Job slots: the directories a local job runs in, kept for the next job of the same service.
//!
//! A slot holds the platform's files of a job (`platform/`: its configuration, script, event
//! and store keys, read-only to the job in the sandbox) and the job's own directory (`job/`,
//! writable, with its `tmp`). Making and removing a dozen files and directories per job is
//! what no-op jobs spend most on when a file system has no journal (ext4 then skips every
//! inode freed in the last minutes when it allocates one, BENCHMARKS.md): a slot's files are
//! written over in place instead, and only what the job itself made goes.
//!
//! A slot is reused only by the same service's jobs. A job may keep a descriptor of its
//! directories beyond its end by passing it to another of its owner's processes (a warm
//! worker shares the host's network, so its abstract sockets); what a later job of another
//! owner put there must never be reachable that way.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Slots waiting for their service's next job, over all services; more are removed.
const MAX_IDLE: usize = 256;

/// The platform's files of a job, as a pod has them under `/oscar`: `config/` with
/// `function_config.yaml`, `script.sh` and the event, and `providers/` with the store keys.
pub const CONFIG: &str = "config";
pub const PROVIDERS: &str = "providers";
pub const EVENT: &str = "config/event";
pub const KEYS: &str = "providers/minio.default";
/// The job's own directories, kept (emptied) from job to job: its `$TMPDIR`, and the
/// supervisor's input and output directories.
pub const JOB_DIRS: [&str; 3] = ["tmp", "input", "output"];
/// The supervisor's report in the job's directory: kept, emptied, so it is written in place.
pub const REPORT: &str = "result.json";

pub struct JobSlots {
    root: PathBuf,
    state: Mutex<Idle>,
}

#[derive(Default)]
struct Idle {
    by_service: HashMap<(String, String), Vec<PathBuf>>,
    count: usize,
    made: u64,
}

/// A job's directories, its alone while it runs.
pub struct Slot {
    /// Empty once given back.
    dir: PathBuf,
    service: (String, String),
}

impl Drop for Slot {
    /// A slot whose job's run was dropped (the job stopped) is never given back: it goes, with
    /// the event, keys and files the job had there.
    fn drop(&mut self) {
        if self.dir.as_os_str().is_empty() {
            return;
        }
        let dir = std::mem::take(&mut self.dir);
        let remove = move || {
            if let Err(err) = std::fs::remove_dir_all(&dir)
                && err.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %dir.display(), %err, "cannot remove a stopped job's directory");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

impl Slot {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The platform's files ([`CONFIG`], [`PROVIDERS`]).
    pub fn platform(&self) -> PathBuf {
        self.dir.join("platform")
    }

    /// The job's directory: its working directory, where its `tmp` and report are.
    pub fn job(&self) -> PathBuf {
        self.dir.join("job")
    }
}

/// `bytes` into `path`, over what is there (the same inode), owner-only when new.
pub(super) fn write_over(path: &Path, bytes: &[u8]) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

impl JobSlots {
    /// Slots under `root`, which is the server's and empty.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            state: Mutex::default(),
        }
    }

    /// A slot for a job of `owner`'s service `name`: one its earlier jobs left, else a new one.
    pub fn take(&self, owner: &str, name: &str) -> io::Result<Slot> {
        let service = (owner.to_string(), name.to_string());
        let (reused, made) = {
            let mut idle = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match idle.by_service.get_mut(&service).and_then(Vec::pop) {
                Some(dir) => {
                    idle.count -= 1;
                    (Some(dir), 0)
                }
                None => {
                    idle.made += 1;
                    (None, idle.made)
                }
            }
        };
        let dir = match reused {
            Some(dir) => dir,
            None => {
                let dir = self.root.join(made.to_string());
                for name in JOB_DIRS {
                    std::fs::create_dir_all(dir.join("job").join(name))?;
                }
                dir
            }
        };
        Ok(Slot { dir, service })
    }

    /// After its job: what the job left goes, the event and keys are emptied, and the slot
    /// waits for the service's next job. A slot whose job could change the platform's files
    /// (no sandbox: `reusable` false), that cannot be emptied, or that would be one idle slot
    /// too many is removed instead.
    pub async fn give_back(&self, mut slot: Slot, reusable: bool) {
        let (dir, service) = (
            std::mem::take(&mut slot.dir),
            std::mem::take(&mut slot.service),
        );
        let emptied = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || {
                if !reusable {
                    return std::fs::remove_dir_all(&dir).map(|()| false);
                }
                empty(&dir)
                    .map(|()| true)
                    .or_else(|_| std::fs::remove_dir_all(&dir).map(|()| false))
            }
        })
        .await;
        let kept = match emptied {
            Ok(Ok(kept)) => kept,
            Ok(Err(err)) => {
                tracing::warn!(dir = %dir.display(), %err, "cannot remove a job's directory");
                false
            }
            Err(err) => {
                tracing::warn!(%err, "lost the task emptying a job's directory");
                false
            }
        };
        if !kept {
            return;
        }
        let mut idle = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if idle.count < MAX_IDLE {
            idle.count += 1;
            idle.by_service.entry(service).or_default().push(dir);
            return;
        }
        drop(idle);
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), %err, "cannot remove a job's directory");
        }
    }
}

/// Empties a used slot for its next job: in `job/`, the [`JOB_DIRS`] emptied and the report
/// truncated, everything else removed; the event and store keys truncated, so no job's data
/// stays behind it. Never follows a symlink the job made.
fn empty(dir: &Path) -> io::Result<()> {
    let job = dir.join("job");
    for entry in std::fs::read_dir(&job)? {
        let entry = entry?;
        let (name, kind) = (entry.file_name(), entry.file_type()?);
        if kind.is_dir() && JOB_DIRS.iter().any(|d| name == *d) {
            remove_all_in(&entry.path())?;
        } else if kind.is_file() && name == REPORT {
            OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(entry.path())?;
        } else {
            remove(&entry)?;
        }
    }
    for name in JOB_DIRS {
        std::fs::create_dir_all(job.join(name))?;
    }
    let platform = dir.join("platform");
    for file in [
        EVENT,
        &format!("{KEYS}/accessKey"),
        &format!("{KEYS}/secretKey"),
    ] {
        match OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(platform.join(file))
        {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

fn remove_all_in(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        remove(&entry?)?;
    }
    Ok(())
}

/// An entry as it is: a directory with all in it (std never follows symlinks there), anything
/// else itself.
fn remove(entry: &std::fs::DirEntry) -> io::Result<()> {
    if entry.file_type()?.is_dir() {
        std::fs::remove_dir_all(entry.path())
    } else {
        std::fs::remove_file(entry.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots() -> (tempfile::TempDir, JobSlots) {
        let root = tempfile::tempdir().unwrap();
        let slots = JobSlots::new(root.path().to_path_buf());
        (root, slots)
    }

    #[tokio::test]
    async fn a_slot_comes_back_empty_and_only_to_its_service() {
        let (root, slots) = slots();
        let slot = slots.take("alice", "svc").unwrap();
        let platform = slot.platform();
        for (file, text) in [(EVENT, "the event"), (&format!("{KEYS}/secretKey"), "sk")] {
            std::fs::create_dir_all(platform.join(file).parent().unwrap()).unwrap();
            write_over(&platform.join(file), text.as_bytes()).unwrap();
        }
        let job = slot.job();
        std::fs::write(job.join(REPORT), "{}").unwrap();
        std::fs::write(job.join("input/event-file"), "the event").unwrap();
        std::fs::remove_dir(job.join("output")).unwrap();
        std::os::unix::fs::symlink(root.path(), job.join("output")).unwrap();
        std::fs::create_dir_all(job.join("tmp/output-1/deep")).unwrap();
        std::fs::write(job.join("tmp/output-1/deep/out"), "data").unwrap();
        // What a job links to outside its directory stays.
        let outside = root.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, job.join("tmp/link")).unwrap();
        std::os::unix::fs::symlink(root.path(), job.join("dirlink")).unwrap();
        let dir = slot.dir.clone();
        slots.give_back(slot, true).await;

        let other = slots.take("bob", "svc").unwrap();
        assert_ne!(
            other.dir, dir,
            "another owner's service gets a slot of its own"
        );
        let again = slots.take("alice", "svc").unwrap();
        assert_eq!(again.dir, dir);
        let names = |path: PathBuf| {
            let mut names: Vec<String> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            names(again.job()),
            ["input", "output", "result.json", "tmp"]
        );
        for name in JOB_DIRS {
            assert!(names(again.job().join(name)).is_empty(), "{name}");
        }
        assert!(again.job().join("output").is_dir() && !again.job().join("output").is_symlink());
        assert_eq!(std::fs::read(again.job().join(REPORT)).unwrap(), b"");
        let platform = again.platform();
        assert_eq!(std::fs::read(platform.join(EVENT)).unwrap(), b"");
        let key = platform.join(KEYS).join("secretKey");
        assert_eq!(std::fs::read(&key).unwrap(), b"");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the store keys are the owner's alone");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert!(root.path().exists());
    }

    #[tokio::test]
    async fn a_slot_never_given_back_goes() {
        let (_root, slots) = slots();
        let slot = slots.take("alice", "svc").unwrap();
        let dir = slot.dir.clone();
        drop(slot);
        for _ in 0..100 {
            if !dir.exists() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the slot of a dropped run stayed");
    }

    #[tokio::test]
    async fn a_slot_whose_job_was_not_sandboxed_is_removed() {
        let (_root, slots) = slots();
        let slot = slots.take("alice", "svc").unwrap();
        let dir = slot.dir.clone();
        slots.give_back(slot, false).await;
        assert!(!dir.exists());
        assert_ne!(slots.take("alice", "svc").unwrap().dir, dir);
    }
}
