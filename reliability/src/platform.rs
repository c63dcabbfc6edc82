//! The server under test: the real binary in embedded mode, started, killed (SIGKILL) and
//! restarted on the same data directory, and driven the way users drive it: the OSCAR REST
//! API with the admin's Basic credentials and S3 with the store's keys.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::Value;
use tokio::process::{Child, Command};

/// The admin's password on every drill's server (user `oscar`).
pub const PASSWORD: &str = "drill-password";
const ACCESS_KEY: &str = "drill-access";
const SECRET_KEY: &str = "drill-secret-key";

pub struct Platform {
    server: PathBuf,
    pub data: PathBuf,
    /// Beside the data directory, writable by jobs (`OSCAR_JOB_MOUNTS`): where they leave
    /// what the drills count (runs, start times).
    pub shared: PathBuf,
    pub http: u16,
    pub s3: u16,
    env: Vec<(String, String)>,
    child: Option<Child>,
    client: Client<HttpConnector, UnsyncBoxBody<Bytes, Infallible>>,
    pub store: aws_sdk_s3::Client,
}

/// A job as `GET /system/logs/{service}` lists it.
#[derive(Debug, Clone)]
pub struct JobStatus {
    pub name: String,
    pub status: String,
}

impl JobStatus {
    /// Ended here: run, or handed to a federation member.
    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "Succeeded" | "Failed" | "Delegated")
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Platform {
    /// A platform on a fresh data directory under `data`; `env` adds to (or overrides) the
    /// drill's settings.
    pub fn new(server: &Path, data: &Path, env: &[(&str, &str)]) -> Self {
        let s3 = free_port();
        Self {
            server: server.to_path_buf(),
            data: data.to_path_buf(),
            shared: data.with_extension("shared"),
            http: free_port(),
            s3,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
            client: Client::builder(hyper_util::rt::TokioExecutor::new()).build({
                // As browsers do.
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                connector
            }),
            store: supervisor::storage::client(
                &format!("http://127.0.0.1:{s3}"),
                "us-east-1",
                ACCESS_KEY,
                SECRET_KEY,
            ),
        }
    }

    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.push((name.to_string(), value.to_string()));
    }

    /// Starts the server and waits until it answers `/health`. Its output goes to
    /// `server.log` in the data directory.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.data)?;
        std::fs::create_dir_all(&self.shared)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.join("server.log"))?;
        let mut command = Command::new(&self.server);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("OSCAR_DATA_DIR", &self.data)
            .env("OSCAR_PASSWORD", PASSWORD)
            .env("OSCAR_LISTEN", format!("127.0.0.1:{}", self.http))
            .env("OSCAR_S3_LISTEN", format!("127.0.0.1:{}", self.s3))
            .env("OSCAR_S3_ACCESS_KEY", ACCESS_KEY)
            .env("OSCAR_S3_SECRET_KEY", SECRET_KEY)
            .env("RUST_LOG", "warn")
            .env("OSCAR_JOB_MOUNTS", format!("{}:rw", self.shared.display()))
            .env("OSCAR_REGISTRY_MIRRORS", test_registry::shared_mirrors())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.server.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = self.rest("GET", "/health", None).await {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "the server exited at start ({status}); see {}",
                    self.data.join("server.log").display()
                );
            }
            if Instant::now() > deadline {
                bail!("the server did not answer /health within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9`: no shutdown, no goodbye.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// SIGTERM and wait: the graceful stop at the end of a drill.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                // SAFETY: plain syscall on our own child.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            if tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// One REST call as the admin: status and body.
    pub async fn rest(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, String)> {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("oscar:{PASSWORD}"));
        let request = self
            .request(method, path)
            .header(http::header::AUTHORIZATION, format!("Basic {auth}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(
                body.map(Value::to_string).unwrap_or_default(),
            )))?;
        let (status, _, body) = self.send(request).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// A request to the server, to finish with headers and a body.
    pub fn request(&self, method: &str, path: &str) -> http::request::Builder {
        http::Request::builder()
            .method(method)
            .uri(format!("http://127.0.0.1:{}{path}", self.http))
    }

    /// Sends a request: status, headers and the whole body.
    pub async fn send<B>(
        &self,
        request: http::Request<B>,
    ) -> anyhow::Result<(u16, http::HeaderMap, Bytes)>
    where
        B: hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
    {
        let request = request.map(BodyExt::boxed_unsync);
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .context("no answer within 30 s")??;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((parts.status.as_u16(), parts.headers, body))
    }

    /// Signs the admin in to the dashboard: the session cookie (`name=value`).
    pub async fn sign_in(&self) -> anyhow::Result<String> {
        let request = self
            .request("POST", "/api/auth/login")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(format!(
                "username=oscar&password={PASSWORD}"
            ))))?;
        let (status, headers, body) = self.send(request).await?;
        if status != 200 {
            bail!(
                "signing in answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next())
            .next_back()
            .map(str::to_string)
            .context("signing in set no session cookie")
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    pub async fn create_service(&self, definition: &Value) -> anyhow::Result<()> {
        match self
            .rest("POST", "/system/services", Some(definition))
            .await?
        {
            (201, _) => Ok(()),
            (status, body) => bail!("creating the service answered {status}: {body}"),
        }
    }

    /// Every job of `service`, following the listing's pages.
    pub async fn jobs(&self, service: &str) -> anyhow::Result<Vec<JobStatus>> {
        let mut found = Vec::new();
        let mut page = String::new();
        loop {
            let (status, body) = self
                .rest("GET", &format!("/system/logs/{service}?page={page}"), None)
                .await?;
            if status != 200 {
                bail!("listing jobs answered {status}: {body}");
            }
            let listing: Value = serde_json::from_str(&body)?;
            if let Some(jobs) = listing["jobs"].as_object() {
                found.extend(jobs.iter().map(|(name, job)| JobStatus {
                    name: name.clone(),
                    status: job["status"].as_str().unwrap_or_default().to_string(),
                }));
            }
            match listing["next_page"].as_str() {
                Some(next) if !next.is_empty() => page = next.to_string(),
                _ => return Ok(found),
            }
        }
    }

    pub async fn job_log(&self, service: &str, job: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .rest("GET", &format!("/system/logs/{service}/{job}"), None)
            .await?;
        if status != 200 {
            bail!("reading the log of {job} answered {status}");
        }
        Ok(body)
    }

    /// Waits until `service` has at least `expected` jobs and all of them have ended.
    pub async fn settle(
        &self,
        service: &str,
        expected: usize,
        within: Duration,
    ) -> anyhow::Result<Vec<JobStatus>> {
        let deadline = Instant::now() + within;
        loop {
            match self.jobs(service).await {
                Ok(jobs) if jobs.len() >= expected && jobs.iter().all(JobStatus::is_final) => {
                    return Ok(jobs);
                }
                Ok(jobs) if Instant::now() > deadline => {
                    let open = jobs.iter().filter(|j| !j.is_final()).count();
                    bail!(
                        "{service}: {} jobs of {expected} after {within:?}, {open} not ended",
                        jobs.len()
                    );
                }
                Err(err) if Instant::now() > deadline => return Err(err),
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// The pids of the supervisors (`server supervise`) running the server's jobs.
    pub fn supervisors(&self) -> Vec<i32> {
        let Some(server) = self.pid() else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // "pid (comm) state ppid …": the parent is the fourth field after the name.
                let parent = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                parent == Some(server) && command.split(|b| *b == 0).any(|arg| arg == b"supervise")
            })
            .collect()
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}
