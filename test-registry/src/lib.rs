//! Test support only: a real OCI registry (CNCF Distribution, Debian's `docker-registry`) on
//! loopback, with or without htpasswd sign-in, and images built from Debian's
//! `busybox-static` pushed to it by the test code.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// Where Debian's `busybox-static` installs the static busybox.
pub const BUSYBOX: &str = "/bin/busybox";

/// The images the test suites' services name, each served as busybox.
pub const STANDARD_IMAGES: &[&str] = &[
    "library/alpine:latest",
    "library/alpine:3.20",
    "grycap/alpine:latest",
    "grycap/cowsay:latest",
];

/// One registry for the whole test process, serving [`STANDARD_IMAGES`]: the value of
/// `OSCAR_REGISTRY_MIRRORS` that sends `docker.io` and `ghcr.io` pulls to it.
pub fn shared_mirrors() -> &'static str {
    static MIRRORS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MIRRORS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        // The registry dies with the thread that started it: one that lives as long as the
        // process.
        std::thread::spawn(move || {
            let registry = Registry::start(None);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(registry.push_standard());
            tx.send(registry.mirrors()).expect("mirrors");
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("the shared registry started")
    })
}

/// A running registry; stopped when dropped.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:port`.
    pub host: String,
    log: PathBuf,
    credentials: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts one, signing users in with `credentials` when given.
    pub fn start(credentials: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().expect("registry directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let host = format!("127.0.0.1:{port}");
        let auth = match credentials {
            Some((user, password)) => {
                let hash = bcrypt::hash(password, 4).expect("bcrypt");
                std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n"))
                    .expect("htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                )
            }
            None => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n{auth}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("registry config");
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).expect("registry log");
        let mut command = Command::new("docker-registry");
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                // Never outlives the tests, however they end.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("docker-registry (Debian's docker-registry) is installed");
        let registry = Self {
            child,
            host,
            log,
            credentials: credentials.map(|(u, p)| (u.to_string(), p.to_string())),
            _dir: dir,
        };
        registry.wait_until_up();
        registry
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&self.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not start: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Pushes [`STANDARD_IMAGES`].
    pub async fn push_standard(&self) {
        let busybox = TestImage::busybox();
        for name in STANDARD_IMAGES {
            self.push(name, &busybox).await;
        }
    }

    /// `OSCAR_REGISTRY_MIRRORS` sending `docker.io` and `ghcr.io` pulls here.
    pub fn mirrors(&self) -> String {
        format!("docker.io=http://{0},ghcr.io=http://{0}", self.host)
    }

    /// `host/name:tag`.
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.host)
    }

    /// Pushes `image` as `name` (`repository:tag`); returns its full reference.
    pub async fn push(&self, name: &str, image: &TestImage) -> String {
        let reference = self.reference(name);
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::Http,
            ..ClientConfig::default()
        });
        let auth = match &self.credentials {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        };
        let layers: Vec<ImageLayer> = image
            .layers
            .iter()
            .map(|layer| ImageLayer::oci_v1_gzip(layer.clone(), None))
            .collect();
        let config = serde_json::json!({
            "architecture": image.architecture,
            "os": "linux",
            "config": {
                "Env": image.env,
                "Entrypoint": image.entrypoint,
                "Cmd": image.cmd,
                "WorkingDir": image.working_dir,
            },
            "rootfs": {"type": "layers", "diff_ids": []},
        });
        client
            .push(
                &reference.parse::<Reference>().expect("reference"),
                &layers,
                Config::oci_v1(serde_json::to_vec(&config).expect("config"), None),
                &auth,
                None,
            )
            .await
            .expect("push to the test registry");
        reference
    }

    /// How many requests the registry has logged whose line contains all of `parts`.
    pub fn requests(&self, parts: &[&str]) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| parts.iter().all(|p| line.contains(p)))
            .count()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An image to push: gzip-compressed layers, bottom first.
#[derive(Clone)]
pub struct TestImage {
    pub layers: Vec<Vec<u8>>,
    pub architecture: String,
    pub env: Vec<String>,
    /// What a container of it runs (`Entrypoint`, then `Cmd`), and where.
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
}

impl TestImage {
    /// A root with busybox and a link for each of its applets in `/bin` (`sh`, `tr`,
    /// `sha256sum`, …), for this machine's architecture.
    pub fn busybox() -> Self {
        let mut layer = Layer::default().dir("bin").dir("etc").dir("root");
        layer = layer.file(
            "bin/busybox",
            &std::fs::read(BUSYBOX).expect("busybox-static"),
            0o755,
        );
        let applets = Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&applets.stdout).lines() {
            if applet != "busybox" {
                layer = layer.symlink(&format!("bin/{applet}"), "busybox");
            }
        }
        layer = layer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644);
        Self {
            layers: vec![layer.gzip()],
            architecture: oci_architecture().to_string(),
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_string()],
            entrypoint: Vec::new(),
            cmd: vec!["sh".to_string()],
            working_dir: "/".to_string(),
        }
    }

    /// This image running `entrypoint` with `cmd` in `working_dir` by default.
    pub fn with_command(mut self, entrypoint: &[&str], cmd: &[&str], working_dir: &str) -> Self {
        self.entrypoint = entrypoint.iter().map(|s| s.to_string()).collect();
        self.cmd = cmd.iter().map(|s| s.to_string()).collect();
        self.working_dir = working_dir.to_string();
        self
    }

    /// This image with one more layer on top.
    pub fn with_layer(mut self, layer: Layer) -> Self {
        self.layers.push(layer.gzip());
        self
    }

    /// This image with a program (a shell script) at `/usr/local/bin/<name>`.
    pub fn with_program(self, name: &str, script: &str) -> Self {
        self.with_layer(
            Layer::default()
                .dir("usr")
                .dir("usr/local")
                .dir("usr/local/bin")
                .file(&format!("usr/local/bin/{name}"), script.as_bytes(), 0o755),
        )
    }

    /// A layer of `bytes` random bytes in one file, for pull benchmarks.
    pub fn with_random_layer(self, path: &str, bytes: usize) -> Self {
        let mut data = vec![0u8; bytes];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for chunk in data.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        self.with_layer(Layer::default().file(path, &data, 0o644))
    }
}

/// OCI's name for this machine's architecture.
pub fn oci_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A layer built entry by entry.
pub struct Layer(tar::Builder<Vec<u8>>);

impl Default for Layer {
    fn default() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }
}

impl Layer {
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(0);
        header
    }

    pub fn file(mut self, path: &str, content: &[u8], mode: u32) -> Self {
        let mut header = Self::header(tar::EntryType::Regular, mode, content.len() as u64);
        self.0
            .append_data(&mut header, path, content)
            .expect("tar file");
        self
    }

    pub fn dir(mut self, path: &str) -> Self {
        let mut header = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.0
            .append_data(&mut header, path, std::io::empty())
            .expect("tar dir");
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut header = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.0
            .append_link(&mut header, path, target)
            .expect("tar symlink");
        self
    }

    /// Removes `path` of lower layers.
    pub fn whiteout(self, path: &str) -> Self {
        let path = Path::new(path);
        let name = format!(
            ".wh.{}",
            path.file_name().expect("a name").to_string_lossy()
        );
        let whiteout = path.with_file_name(name);
        self.file(&whiteout.to_string_lossy(), b"", 0o644)
    }

    pub fn gzip(self) -> Vec<u8> {
        let tar = self.0.into_inner().expect("tar");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&tar).expect("gzip");
        encoder.finish().expect("gzip")
    }
}
