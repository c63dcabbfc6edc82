//! The sandbox local jobs run in: bubblewrap's Linux namespaces. A job sees the host's programs
//! read-only, its own working directory, a private `/tmp`, a `/proc` of its own processes, and
//! nothing of the platform: not the data directory (secrets, database, the store's files, other
//! jobs), not the server's processes or environment. The network is the host's, so jobs reach
//! the store (and the Internet) as pods do.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The host's programs and libraries.
const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];
/// What programs read of the host's `/etc`: name resolution, TLS roots (Debian's and Red Hat's
/// places), users and groups, time zones, the loader's cache, Debian's alternatives. Nothing
/// else of it (keys, shadow). Each is a mount, which costs every job start.
const ETC: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    "/etc/ld.so.cache",
    "/etc/alternatives",
];

/// How a top-level program directory of the host is shown to jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemPath {
    /// Bound read-only.
    Bound(PathBuf),
    /// A symlink on the host (merged `/usr`: `/bin` → `usr/bin`), made again: cheaper than a
    /// mount.
    Link { path: PathBuf, target: PathBuf },
}

impl SystemPath {
    /// What this host has of [`SYSTEM`].
    fn of_host() -> Vec<Self> {
        SYSTEM
            .iter()
            .map(PathBuf::from)
            .filter_map(|path| match std::fs::read_link(&path) {
                Ok(target) => Some(Self::Link { path, target }),
                Err(_) if path.is_dir() => Some(Self::Bound(path)),
                Err(_) => None,
            })
            .collect()
    }
}

/// A host directory the operator shows every job (`OSCAR_JOB_MOUNTS`): shared reference data
/// read-only, or a writable scratch area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobMount {
    pub path: PathBuf,
    pub writable: bool,
}

impl JobMount {
    /// `path` or `path:ro` (read-only), `path:rw` (writable); absolute paths only.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (path, writable) = match entry.rsplit_once(':') {
            Some((path, "rw")) => (path, true),
            Some((path, "ro")) => (path, false),
            _ => (entry, false),
        };
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(format!("{entry:?} is not an absolute path"));
        }
        Ok(Self { path, writable })
    }
}

/// Bubblewrap, found and known to work on this host, and what every job sees besides its own
/// directory.
#[derive(Debug, Clone)]
pub struct Sandbox {
    bwrap: PathBuf,
    system: Vec<SystemPath>,
    mounts: Vec<JobMount>,
}

impl Sandbox {
    /// Bubblewrap from `PATH`, if it can make the sandbox here: it needs unprivileged user
    /// namespaces (or root), which some hosts and container runtimes turn off. The reason
    /// otherwise.
    pub fn probe(work_root: &Path, mounts: Vec<JobMount>) -> Result<Self, String> {
        let bwrap = find_program("bwrap").ok_or("bubblewrap (bwrap) is not installed")?;
        let sandbox = Self {
            bwrap,
            system: SystemPath::of_host(),
            mounts,
        };
        let output = std::process::Command::new(&sandbox.bwrap)
            .args(sandbox.arguments(
                work_root,
                Path::new("/bin/sh"),
                &["-c".into(), "exit 0".into()],
            ))
            .env_clear()
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", sandbox.bwrap.display()))?;
        if !output.status.success() {
            return Err(format!(
                "bubblewrap cannot create the sandbox here ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(sandbox)
    }

    pub fn program(&self) -> &Path {
        &self.bwrap
    }

    /// Bubblewrap's arguments that run `program args` confined, `job_dir` its working
    /// directory and the only place it may write besides its own `/tmp` and writable mounts.
    pub fn arguments(&self, job_dir: &Path, program: &Path, args: &[String]) -> Vec<OsString> {
        arguments(job_dir, program, args, &self.system, &self.mounts)
    }
}

/// A program by path, or by name in `PATH`, as an absolute path.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    if path.components().count() > 1 {
        return std::path::absolute(path).ok().filter(|p| p.is_file());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn arguments(
    job_dir: &Path,
    program: &Path,
    args: &[String],
    system: &[SystemPath],
    mounts: &[JobMount],
) -> Vec<OsString> {
    let mut out: Vec<OsString> = [
        // The job goes when its supervisor's parent (this server) does.
        "--die-with-parent",
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "oscar-job",
        // Root inside the namespace is nobody outside it; no capabilities even there.
        "--cap-drop",
        "ALL",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    for entry in system {
        match entry {
            SystemPath::Bound(path) => out.extend(["--ro-bind".into(), path.into(), path.into()]),
            SystemPath::Link { path, target } => {
                out.extend(["--symlink".into(), target.into(), path.into()])
            }
        }
    }
    for path in ETC {
        out.extend(["--ro-bind-try", path, path].map(OsString::from));
    }
    out.extend(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"].map(OsString::from));
    // After the private /tmp, which would hide them when they are under it (a data directory
    // in /tmp): the supervisor (this server's binary, wherever it was built or installed) and
    // the job's directory.
    let mut bind = |how: &str, path: &Path| out.extend([how.into(), path.into(), path.into()]);
    bind("--ro-bind", program);
    for mount in mounts {
        bind(
            if mount.writable {
                "--bind"
            } else {
                "--ro-bind"
            },
            &mount.path,
        );
    }
    bind("--bind", job_dir);
    out.extend([
        "--chdir".into(),
        job_dir.into(),
        "--".into(),
        program.into(),
    ]);
    out.extend(args.iter().map(OsString::from));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// The pairs `--flag value value` for a bind flag.
    fn binds(args: &[String], flag: &str) -> Vec<String> {
        args.windows(3)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .collect()
    }

    #[test]
    fn mounts_are_absolute_and_read_only_unless_asked() {
        let mount = |path: &str, writable| JobMount {
            path: path.into(),
            writable,
        };
        assert_eq!(JobMount::parse("/data:rw"), Ok(mount("/data", true)));
        assert_eq!(JobMount::parse("/data:ro"), Ok(mount("/data", false)));
        assert_eq!(JobMount::parse("/data"), Ok(mount("/data", false)));
        assert!(JobMount::parse("data:rw").unwrap_err().contains("absolute"));
    }

    #[test]
    fn a_job_sees_its_directory_the_host_programs_and_nothing_of_the_platform() {
        let job = Path::new("/var/lib/oscar/jobs/svc-1");
        let program = Path::new("/opt/oscar/server");
        let mounts = [
            JobMount::parse("/srv/models").unwrap(),
            JobMount::parse("/srv/scratch:rw").unwrap(),
        ];
        let system = [
            SystemPath::Bound("/usr".into()),
            SystemPath::Link {
                path: "/bin".into(),
                target: "usr/bin".into(),
            },
        ];
        let args = text(&arguments(
            job,
            program,
            &["supervise".into()],
            &system,
            &mounts,
        ));
        assert_eq!(binds(&args, "--symlink"), ["usr/bin"]);
        assert_eq!(
            binds(&args, "--bind"),
            ["/srv/scratch", "/var/lib/oscar/jobs/svc-1"]
        );
        assert_eq!(
            binds(&args, "--ro-bind"),
            ["/usr", "/opt/oscar/server", "/srv/models"]
        );
        let read_only = binds(&args, "--ro-bind-try");
        assert!(read_only.contains(&"/etc/ssl".to_string()));
        assert!(
            read_only
                .iter()
                .all(|p| !p.starts_with("/var") && p != "/etc"),
            "{read_only:?}"
        );
        for flag in ["--unshare-user", "--unshare-pid", "--die-with-parent"] {
            assert!(args.contains(&flag.to_string()), "{flag}");
        }
        assert!(!args.contains(&"--share-net".to_string()));
        let end = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[end + 1..], ["/opt/oscar/server", "supervise"]);
        let chdir = args.iter().position(|a| a == "--chdir").unwrap();
        assert_eq!(args[chdir + 1], "/var/lib/oscar/jobs/svc-1");
        // A private /tmp first, or it would hide a job directory under /tmp.
        let tmp = args.iter().position(|a| a == "--tmpfs").unwrap();
        let job_bind = args.iter().position(|a| a == "--bind").unwrap();
        assert!(tmp < job_bind);
    }
}
