//! A real WebDAV server for the storage provider tests: Debian's rclone (`rclone serve webdav`)
//! over a temporary directory on a loopback port, with basic authentication.

use std::path::Path;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const USER: &str = "scientist";
pub const PASSWORD: &str = "dav-password";

pub struct WebDav {
    pub dir: TempDir,
    /// `http://127.0.0.1:<port>`, the provider's `hostname` with its scheme.
    pub url: String,
    child: std::process::Child,
}

impl WebDav {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let child = std::process::Command::new("rclone")
            .args(["serve", "webdav", "--config", "/dev/null"])
            .arg(dir.path())
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .args(["--user", USER, "--pass", PASSWORD])
            // Files written to the directory directly show at once (rclone caches listings).
            .args(["--dir-cache-time", "0s"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("rclone (Debian package rclone) serves WebDAV for these tests: make test installs it");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "rclone serve webdav did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { dir, url, child }
    }

    /// The file at `path` on the server, when there is one.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.path().join(path)).ok()
    }

    /// Puts a file on the server as another WebDAV client would (the server's own directory).
    pub fn write(&self, path: &str, body: &[u8]) {
        let target = self.dir.path().join(path);
        std::fs::create_dir_all(target.parent().unwrap_or(Path::new("."))).unwrap();
        std::fs::write(target, body).unwrap();
    }

    /// The provider declaration a service names it with.
    pub fn provider(&self, password: &str) -> serde_json::Value {
        serde_json::json!({"hostname": self.url, "login": USER, "password": password})
    }
}

impl Drop for WebDav {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
