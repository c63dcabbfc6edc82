//! The sandbox local jobs run in: bubblewrap's Linux namespaces. A job sees its service's image
//! (or the host's programs) read-only, its own working directory, a private `/tmp`, a `/proc`
//! of its own processes, and nothing of the platform: not the data directory (secrets,
//! database, the store's files, other jobs, the image cache's other images), not the server's
//! processes or environment. The network is the host's, so jobs reach the store (and the
//! Internet) as pods do.

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

/// Where a job's programs come from.
#[derive(Debug, Clone, Copy)]
pub enum Programs<'a> {
    /// The host's `/usr` and friends; the job's directory at its own path.
    Host,
    /// An image's root file system as `/`; the job's directory at [`IMAGE_JOB_DIR`] and the
    /// supervisor under `/oscar`, started by the host's loader when it is not static.
    Image {
        root: &'a Path,
        loader: &'a Loader,
        /// The operator's job mounts and where the image sees them ([`Sandbox::image_mounts`]).
        mounts: &'a [(JobMount, PathBuf)],
    },
}

/// Which network a sandboxed process has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The host's: jobs reach the store and the Internet as pods do.
    Host,
    /// One of its own with only a loopback: instances of exposed services, which listen on
    /// their image's port, each its own.
    Own,
}

/// Where a job in an image finds its directory, as a pod finds its mounts under `/oscar`.
pub const IMAGE_JOB_DIR: &str = "/oscar/job";
/// Where every sandboxed job finds the platform's files (`config/`, `providers/`), read-only,
/// as a pod does.
pub const PLATFORM_DIR: &str = "/oscar";
const IMAGE_SUPERVISOR: &str = "/oscar/bin/supervisor";
const IMAGE_LIBRARIES: &str = "/oscar/lib";

/// A host directory a sandboxed process sees at `seen`.
#[derive(Debug, Clone, Copy)]
pub struct Bind<'a> {
    pub host: &'a Path,
    pub seen: &'a Path,
    pub writable: bool,
}

/// Bubblewrap's flag for a bind.
fn bind_flag(writable: bool) -> &'static str {
    if writable { "--bind" } else { "--ro-bind" }
}

/// What a dynamically linked supervisor needs to start inside an image whose C library may be
/// another (or none): the host's loader and the libraries it names, shown under `/oscar/lib`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loader {
    /// The program interpreter (`ld-linux-*.so`); None for a static program.
    interpreter: Option<PathBuf>,
    libraries: Vec<PathBuf>,
}

impl Loader {
    /// What `program` needs, from `ldd` (glibc's, run once at start-up).
    pub fn of(program: &Path) -> Result<Self, String> {
        let output = std::process::Command::new("ldd")
            .arg(program)
            .env_clear()
            .output()
            .map_err(|e| format!("cannot run ldd on {}: {e}", program.display()))?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            // "not a dynamic executable": a static program needs nothing.
            return Ok(Self::default());
        }
        Ok(Self::parse(&text))
    }

    fn parse(ldd: &str) -> Self {
        let mut loader = Self::default();
        for line in ldd.lines().map(str::trim) {
            let path = match line.split_once(" => ") {
                Some((_, rest)) => rest.split(" (").next().unwrap_or(""),
                None => line.split(" (").next().unwrap_or(""),
            };
            if !path.starts_with('/') {
                continue; // linux-vdso, "statically linked"
            }
            if line.contains(" => ") {
                loader.libraries.push(PathBuf::from(path));
            } else {
                loader.interpreter = Some(PathBuf::from(path));
            }
        }
        loader
    }

    /// The command that starts `args` of the supervisor bound at [`IMAGE_SUPERVISOR`].
    fn command(&self, args: &[String]) -> Vec<OsString> {
        let mut out: Vec<OsString> = Vec::new();
        if let Some(interpreter) = &self.interpreter {
            out.extend([
                in_libraries(interpreter),
                // Not the image's ld.so.cache, which names the image's libraries.
                "--inhibit-cache".into(),
                "--library-path".into(),
                IMAGE_LIBRARIES.into(),
            ]);
        }
        out.push(IMAGE_SUPERVISOR.into());
        out.extend(args.iter().map(OsString::from));
        out
    }
}

/// Where a host library is shown in an image.
fn in_libraries(path: &Path) -> OsString {
    Path::new(IMAGE_LIBRARIES)
        .join(path.file_name().unwrap_or_default())
        .into_os_string()
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
                Programs::Host,
                work_root,
                Path::new("/bin/sh"),
                &["-c".into(), "exit 0".into()],
                Network::Host,
                &[],
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
    /// directory and the only place it may write besides its own `/tmp`, writable mounts and
    /// the `binds` (the platform's files of a job, the service's volume and mount; each a
    /// directory on the host, and where
    /// the process sees it).
    pub fn arguments(
        &self,
        programs: Programs<'_>,
        job_dir: &Path,
        program: &Path,
        args: &[String],
        network: Network,
        binds: &[Bind<'_>],
    ) -> Vec<OsString> {
        let mut out = match programs {
            Programs::Host => arguments(job_dir, program, args, &self.system, &self.mounts, binds),
            Programs::Image {
                root,
                loader,
                mounts,
            } => image_arguments(root, loader, job_dir, program, args, mounts, binds),
        };
        if network == Network::Own {
            // After NAMESPACES' `--cap-drop ALL`: root of the namespace may listen on ports
            // below 1024 of its own network (nginx's 80), and nothing else.
            let own = [
                "--unshare-net",
                "--uid",
                "0",
                "--gid",
                "0",
                "--cap-add",
                "CAP_NET_BIND_SERVICE",
            ];
            let at = NAMESPACES.len();
            out.splice(at..at, own.map(OsString::from));
        }
        out
    }

    /// Makes the operator's job mounts' mount points in an image's root (which is read-only
    /// in the sandbox, so bubblewrap cannot). Returns them as the image sees them: a symlink
    /// of the image on the way is followed inside the image, never on the host.
    pub fn image_mounts(&self, root: &Path) -> std::io::Result<Vec<(JobMount, PathBuf)>> {
        self.mounts
            .iter()
            .map(|mount| {
                let inside = images::unpack::resolve(root, &mount.path)?;
                std::fs::create_dir_all(&inside)?;
                let seen = Path::new("/").join(inside.strip_prefix(root).unwrap_or(&inside));
                Ok((mount.clone(), seen))
            })
            .collect()
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

/// What confines every job, wherever its programs come from.
const NAMESPACES: &[&str] = &[
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
];

/// A job in an image: the image's root read-only as `/`, the host's name resolution, a
/// private `/tmp`, `/proc` and `/dev`, a fresh `/oscar` with the supervisor, its libraries and
/// the job's directory.
fn image_arguments(
    root: &Path,
    loader: &Loader,
    job_dir: &Path,
    program: &Path,
    args: &[String],
    mounts: &[(JobMount, PathBuf)],
    binds: &[Bind<'_>],
) -> Vec<OsString> {
    let mut out: Vec<OsString> = NAMESPACES.iter().map(OsString::from).collect();
    // Images expect to run as root: root of the namespace, the server's user outside it.
    out.extend(["--uid", "0", "--gid", "0"].map(OsString::from));
    out.extend(["--ro-bind".into(), root.into(), "/".into()]);
    for path in ["/etc/resolv.conf", "/etc/hosts"] {
        out.extend(["--ro-bind-try", path, path].map(OsString::from));
    }
    out.extend(
        [
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/oscar",
        ]
        .map(OsString::from),
    );
    let mut bind = |how: &str, from: &Path, to: OsString| out.extend([how.into(), from.into(), to]);
    bind("--ro-bind", program, IMAGE_SUPERVISOR.into());
    for library in loader.interpreter.iter().chain(&loader.libraries) {
        bind("--ro-bind", library, in_libraries(library));
    }
    for (mount, seen) in mounts {
        bind(bind_flag(mount.writable), &mount.path, seen.into());
    }
    for b in binds {
        bind(bind_flag(b.writable), b.host, b.seen.into());
    }
    bind("--bind", job_dir, IMAGE_JOB_DIR.into());
    out.extend(["--remount-ro", "/oscar", "--chdir", IMAGE_JOB_DIR, "--"].map(OsString::from));
    out.extend(loader.command(args));
    out
}

fn arguments(
    job_dir: &Path,
    program: &Path,
    args: &[String],
    system: &[SystemPath],
    mounts: &[JobMount],
    binds: &[Bind<'_>],
) -> Vec<OsString> {
    let mut out: Vec<OsString> = NAMESPACES.iter().map(OsString::from).collect();
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
        bind(bind_flag(mount.writable), &mount.path);
    }
    for b in binds {
        out.extend([bind_flag(b.writable).into(), b.host.into(), b.seen.into()]);
    }
    let mut bind = |how: &str, path: &Path| out.extend([how.into(), path.into(), path.into()]);
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
            &[
                Bind {
                    host: Path::new("/var/lib/oscar/volumes/u1/results"),
                    seen: Path::new("/results"),
                    writable: true,
                },
                Bind {
                    host: Path::new("/var/lib/oscar/jobs/1/platform/config"),
                    seen: Path::new("/oscar/config"),
                    writable: false,
                },
            ],
        ));
        assert_eq!(binds(&args, "--symlink"), ["usr/bin"]);
        assert_eq!(
            binds(&args, "--bind"),
            [
                "/srv/scratch",
                "/var/lib/oscar/volumes/u1/results",
                "/var/lib/oscar/jobs/svc-1"
            ]
        );
        let at = args
            .iter()
            .position(|a| a == "/var/lib/oscar/volumes/u1/results")
            .unwrap();
        assert_eq!(
            args[at + 1],
            "/results",
            "the volume is seen at its mount path"
        );
        assert_eq!(
            binds(&args, "--ro-bind"),
            [
                "/usr",
                "/opt/oscar/server",
                "/srv/models",
                "/var/lib/oscar/jobs/1/platform/config"
            ]
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

    #[test]
    fn the_loader_is_read_from_ldd() {
        let ldd = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        let loader = Loader::parse(ldd);
        assert_eq!(
            loader.interpreter,
            Some("/lib64/ld-linux-x86-64.so.2".into())
        );
        assert_eq!(loader.libraries.len(), 2);
        assert_eq!(Loader::parse("\tstatically linked\n"), Loader::default());
        let command = text(&loader.command(&["supervise".into()]));
        assert_eq!(
            command,
            [
                "/oscar/lib/ld-linux-x86-64.so.2",
                "--inhibit-cache",
                "--library-path",
                "/oscar/lib",
                "/oscar/bin/supervisor",
                "supervise"
            ]
        );
        assert_eq!(
            text(&Loader::default().command(&[])),
            ["/oscar/bin/supervisor"]
        );
    }

    #[test]
    fn a_job_in_an_image_sees_the_image_its_directory_and_the_supervisor() {
        let loader = Loader::parse(
            "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n\t/lib64/ld-linux-x86-64.so.2 (0x1)\n",
        );
        let mounts = [(
            JobMount::parse("/srv/models").unwrap(),
            PathBuf::from("/models"),
        )];
        let args = text(&image_arguments(
            Path::new("/data/images/roots/sha256-ab"),
            &loader,
            Path::new("/data/jobs/svc-1"),
            Path::new("/opt/oscar/server"),
            &["supervise".into()],
            &mounts,
            &[],
        ));
        assert_eq!(
            binds(&args, "--ro-bind"),
            [
                "/data/images/roots/sha256-ab",
                "/opt/oscar/server",
                "/lib64/ld-linux-x86-64.so.2",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/srv/models"
            ]
        );
        let at = |from: &str| args[args.iter().position(|a| a == from).unwrap() + 1].clone();
        assert_eq!(at("/data/images/roots/sha256-ab"), "/");
        assert_eq!(at("/srv/models"), "/models");
        assert_eq!(at("/data/jobs/svc-1"), IMAGE_JOB_DIR);
        assert_eq!(binds(&args, "--bind"), ["/data/jobs/svc-1"]);
        // Nothing of the host's programs: the image is the root.
        assert!(!args.iter().any(|a| a == "/usr" || a == "--symlink"));
        assert_eq!(at("--chdir"), IMAGE_JOB_DIR);
        for flag in ["--unshare-user", "--unshare-pid", "--die-with-parent"] {
            assert!(args.contains(&flag.to_string()), "{flag}");
        }
        let end = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[end + 1], "/oscar/lib/ld-linux-x86-64.so.2");
        assert_eq!(args.last().unwrap(), "supervise");
    }
}
