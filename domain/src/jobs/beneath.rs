//! What the server reads from and moves into directories that jobs and instances write, without
//! following anything they put there. A job sees the host paths of its binds in its
//! `/proc/self/mountinfo`: a `response` made a symlink to the platform's secrets would be read
//! by the server and answered to the caller, a warm worker's `requests` made a symlink would
//! have the server write the next request's files wherever it points.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A directory opened by the server; what is in it is the job's.
pub struct Beneath(OwnedFd);

impl Beneath {
    /// `path`, which is the server's: a job or instance cannot replace it (it is the mount
    /// point of its directory), only what is in it.
    pub fn open(path: &Path) -> io::Result<Self> {
        open_at(libc::AT_FDCWD, path, libc::O_DIRECTORY).map(Self)
    }

    /// The directory `name` in it; a symlink there is refused.
    pub fn dir(&self, name: &str) -> io::Result<Self> {
        open_at(
            self.fd(),
            Path::new(name),
            libc::O_DIRECTORY | libc::O_NOFOLLOW,
        )
        .map(Self)
    }

    /// The regular file `name` in it, whole; a symlink, FIFO or device there is refused (and
    /// opening one never blocks).
    pub fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK;
        let mut file = File::from(open_at(self.fd(), Path::new(name), flags)?);
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{name} is not a regular file"),
            ));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Moves `from` (the server's) in as `name`; fails when something other than an empty
    /// directory is there already.
    pub fn move_in(&self, from: &Path, name: &str) -> io::Result<()> {
        rename_at(libc::AT_FDCWD, from, self.fd(), Path::new(name))
    }

    /// Moves `name`, whatever it is now (a symlink moves as itself), out to `to` (the
    /// server's).
    pub fn move_out(&self, name: &str, to: &Path) -> io::Result<()> {
        rename_at(self.fd(), Path::new(name), libc::AT_FDCWD, to)
    }

    fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

fn open_at(dir: RawFd, path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = c_path(path)?;
    // SAFETY: a plain syscall on a NUL-terminated path; the fd returned is ours alone.
    let fd = unsafe { libc::openat(dir, path.as_ptr(), flags | libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just opened, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn rename_at(from_dir: RawFd, from: &Path, to_dir: RawFd, to: &Path) -> io::Result<()> {
    let (from, to) = (c_path(from)?, c_path(to)?);
    // SAFETY: a plain syscall on NUL-terminated paths.
    if unsafe { libc::renameat(from_dir, from.as_ptr(), to_dir, to.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_job_made_a_symlink_or_a_fifo_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "the platform's").unwrap();
        let job = dir.path().join("job");
        std::fs::create_dir(&job).unwrap();
        std::fs::write(job.join("result.json"), "{}").unwrap();
        std::os::unix::fs::symlink(&secret, job.join("response")).unwrap();
        std::os::unix::fs::symlink(dir.path(), job.join("requests")).unwrap();
        let fifo = c_path(&job.join("fifo")).unwrap();
        // SAFETY: a plain syscall on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

        let opened = Beneath::open(&job).unwrap();
        assert_eq!(opened.read("result.json").unwrap(), b"{}");
        assert!(opened.read("response").is_err());
        assert!(opened.read("fifo").is_err(), "read, or blocked");
        assert!(opened.dir("requests").is_err());
        // A symlink moves out as itself: what it points at stays.
        opened
            .move_out("requests", &dir.path().join("moved"))
            .unwrap();
        assert!(dir.path().join("moved").is_symlink());
        assert!(secret.exists());
    }

    #[test]
    fn a_directory_moves_in_only_where_nothing_else_is() {
        let dir = tempfile::tempdir().unwrap();
        let requests = dir.path().join("requests");
        std::fs::create_dir(&requests).unwrap();
        std::os::unix::fs::symlink(dir.path(), requests.join("planted")).unwrap();
        let staged = dir.path().join("staged");
        std::fs::create_dir(&staged).unwrap();
        std::fs::write(staged.join("event"), "e").unwrap();

        let opened = Beneath::open(&requests).unwrap();
        assert!(opened.move_in(&staged, "planted").is_err());
        opened.move_in(&staged, "job").unwrap();
        assert_eq!(opened.dir("job").unwrap().read("event").unwrap(), b"e");
    }
}
