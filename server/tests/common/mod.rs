//! `TestApp`: the real router, built by the same `startup::build` as `main`, in a temp data
//! dir with the embedded S3 on a free loopback port. Requests go in-process (no HTTP socket).
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod cluster;
pub mod jobs;
pub mod oidc;
pub mod webdav;

use axum::body::Body;
use http::{Request, StatusCode, header};
use server::config::Config;
use server::startup::{self, Application};
use tempfile::TempDir;
use tower::ServiceExt;

pub const ADMIN: &str = "oscar";
pub const PASSWORD: &str = "test-password";

pub struct TestApp {
    pub app: Application,
    pub config: Config,
    cookie: Option<String>,
    /// Taken by [`TestApp::stop`].
    dir: Option<TempDir>,
}

impl Drop for TestApp {
    /// The instances of exposed services and warm workers (and jobs) may still run when a
    /// test ends, their mounts with them: detached first, or removing the data directory would
    /// go through them (emptying the mounted folders, waiting on a store that no longer
    /// answers).
    fn drop(&mut self) {
        if let Ok(rclone) = domain::jobs::rclone::Rclone::find() {
            for root in ["exposed", "jobs"] {
                rclone.release_left_over(&self.config.data_dir.join(root));
            }
        }
    }
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl TestResponse {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl TestApp {
    /// Embedded mode with SQLite.
    pub async fn new() -> Self {
        Self::with_database(None).await
    }

    /// Embedded mode with the given database URL (None: SQLite in the data dir).
    pub async fn with_database(database_url: Option<String>) -> Self {
        Self::with_config(|config| config.database_url = database_url).await
    }

    /// Embedded mode with sign-in through `issuer` (the fake provider), VO `oidc::VO` required.
    pub async fn with_oidc(issuer: &str) -> Self {
        Self::with_oidc_on(issuer, None).await
    }

    pub async fn with_oidc_on(issuer: &str, database_url: Option<String>) -> Self {
        let settings = oidc::settings(issuer);
        Self::with_config(|config| {
            config.oidc = Some(settings);
            config.database_url = database_url;
        })
        .await
    }

    /// Embedded mode with SQLite, after `adjust` changed the test configuration.
    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::embedded_for_tests(dir.path().join("data"));
        // Jobs run through this package's binary, as in production.
        config.supervisor = Some(vec![
            env!("CARGO_BIN_EXE_server").into(),
            "supervise".into(),
        ]);
        // In their image, which a real registry on loopback serves.
        if let server::config::ExecutorConfig::Image(images) = &mut config.executor {
            images.mirrors = test_mirrors();
        }
        adjust(&mut config);
        Self::start(config, dir).await
    }

    /// Starts the app on an existing data directory, as a restarted server would.
    pub async fn start(config: Config, dir: TempDir) -> Self {
        let app = startup::build(&config).await.expect("the app starts");
        Self {
            app,
            config,
            cookie: None,
            dir: Some(dir),
        }
    }

    /// The same test on every database available: SQLite always, PostgreSQL when
    /// `TEST_DATABASE_URL` is set (`make test` sets it).
    pub async fn on_each_database() -> Vec<Self> {
        let mut apps = vec![Self::new().await];
        if let Some(url) = fresh_postgres_database().await {
            apps.push(Self::with_database(Some(url)).await);
        }
        apps
    }

    pub fn database(&self) -> &str {
        self.app.state.info.database.as_str()
    }

    pub async fn send(&mut self, request: Request<Body>) -> TestResponse {
        let (status, headers, bytes) = self.send_bytes(request).await;
        TestResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Like `send`, for binary bodies.
    pub async fn send_bytes(
        &mut self,
        mut request: Request<Body>,
    ) -> (StatusCode, http::HeaderMap, Vec<u8>) {
        if let Some(cookie) = &self.cookie {
            request
                .headers_mut()
                .insert(header::COOKIE, cookie.parse().unwrap());
        }
        let response = self.app.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        // Keep the session cookie like a browser would.
        if let Some(set) = headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
        {
            self.cookie = Some(set.split(';').next().unwrap().to_string());
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, bytes.to_vec())
    }

    /// Uploads `body` the way the dashboard does (`PUT /api/upload/{bucket}/{key}`).
    pub async fn upload(&mut self, path: &str, body: Vec<u8>) -> TestResponse {
        let request = Request::put(format!("/api/upload/{path}"))
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    pub async fn get(&mut self, path: &str) -> TestResponse {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    /// Calls a server function the way the browser's server-fn client does (URL-encoded form).
    pub async fn call(&mut self, endpoint: &str, form: &[(&str, &str)]) -> TestResponse {
        let body = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    model::url::percent_encode(k, b""),
                    model::url::percent_encode(v, b"")
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let request = Request::post(format!("/api/{endpoint}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    /// A REST request with the admin's HTTP Basic credentials (what oscar-python sends).
    pub async fn rest(
        &mut self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> TestResponse {
        self.rest_as(method, path, body, Some((ADMIN, PASSWORD)))
            .await
    }

    pub async fn rest_as(
        &mut self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        basic: Option<(&str, &str)>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(path);
        if let Some((user, password)) = basic {
            request = request.header(header::AUTHORIZATION, basic_auth(user, password));
        }
        let body = body
            .map(|b| Body::from(b.to_string()))
            .unwrap_or_else(Body::empty);
        self.send(request.body(body).unwrap()).await
    }

    /// Calls a server function declared with a JSON body (`input = Json`).
    pub async fn call_json(&mut self, endpoint: &str, body: serde_json::Value) -> TestResponse {
        let request = Request::post(format!("/api/{endpoint}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    pub async fn login(&mut self) -> TestResponse {
        let response = self
            .call("auth/login", &[("username", ADMIN), ("password", PASSWORD)])
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "login failed: {}",
            response.body
        );
        response
    }

    /// A request with any Authorization header and raw body (`/job`, `/run`).
    pub async fn invoke(
        &mut self,
        path: &str,
        authorization: &str,
        body: impl Into<Body>,
    ) -> TestResponse {
        let request = Request::post(path)
            .header(header::AUTHORIZATION, authorization)
            .body(body.into())
            .unwrap();
        self.send(request).await
    }

    /// Stops the app and gives back what a restart needs: its configuration and data dir.
    pub async fn stop(mut self) -> (Config, TempDir) {
        self.app.shutdown().await;
        (
            self.config.clone(),
            self.dir.take().expect("not stopped before"),
        )
    }

    /// The session cookie (`name=value`) the app set, if any.
    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    pub fn forget_cookie(&mut self) {
        self.cookie = None;
    }

    /// Submits the layout's "Log out" form.
    pub async fn logout(&mut self) -> TestResponse {
        self.send(Request::post("/auth/logout").body(Body::empty()).unwrap())
            .await
    }

    /// The current session cookie, to switch between several signed-in users.
    pub fn session(&self) -> Option<String> {
        self.cookie.clone()
    }

    pub fn use_session(&mut self, cookie: Option<String>) {
        self.cookie = cookie;
    }

    /// Signs `user` in through the OIDC flow (the provider signs in the `login_hint` user);
    /// returns the callback's response (a redirect to `next`, or to the login page).
    pub async fn login_oidc(&mut self, op: &oidc::FakeOp, user: &str, next: &str) -> TestResponse {
        self.forget_cookie();
        let start = self
            .get(&format!(
                "/auth/login?next={}&login_hint={}",
                model::url::percent_encode(next, b"/"),
                model::url::percent_encode(user, b"")
            ))
            .await;
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
        let callback = op.authorize(start.location());
        let path = callback.split_once("://").unwrap().1;
        let path = &path[path.find('/').unwrap()..];
        self.get(path).await
    }

    /// An S3 client of the embedded store with the keys `GET /system/config` gives the holder
    /// of `token` (what oscar-python's storage client uses).
    pub async fn store_client_for(&mut self, token: &str) -> aws_sdk_s3::Client {
        let config = self
            .rest_bearer("GET", "/system/config", None, token)
            .await
            .json();
        let provider = &config["minio_provider"];
        supervisor::storage::client(
            &self.app.state.info.storage_endpoint,
            "us-east-1",
            provider["access_key"].as_str().unwrap(),
            provider["secret_key"].as_str().unwrap(),
        )
    }

    /// A REST request with `Authorization: Bearer <token>`.
    pub async fn rest_bearer(
        &mut self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        token: &str,
    ) -> TestResponse {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body
            .map(|b| Body::from(b.to_string()))
            .unwrap_or_else(Body::empty);
        self.send(request.body(body).unwrap()).await
    }
}

/// Upstream's own test service (grycap/oscar-tests `data/00-cowsay.yaml`, its entry sent as
/// JSON the way oscar-python and the Robot suite send it), named `name`, with buckets of its own.
pub fn upstream_cowsay(name: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "cpu": "1.0",
        "memory": "128Mi",
        "image": "ghcr.io/grycap/cowsay",
        "script": "#!/bin/sh\n\nif [ \"$INPUT_TYPE\" = \"json\" ]\nthen\n    jq '.message' \"$INPUT_FILE_PATH\" -r | /usr/games/cowsay\nelse\n    cat \"$INPUT_FILE_PATH\" | /usr/games/cowsay\nfi\n",
        "input": [{"storage_provider": "minio", "path": format!("{name}/input")}],
        "output": [{"storage_provider": "minio", "path": format!("{name}/output")}],
        "isolation_level": "SERVICE",
        "visibility": "private",
    })
}

/// Upstream's JSON of an OSCAR type (`fixtures/oscar/<name>.json`).
pub fn upstream_json(name: &str) -> String {
    let path = format!(
        "{}/../fixtures/oscar/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Checks that `answer` has only upstream's fields (`fixture`: upstream's JSON of the same
/// type), in upstream's order, and returns upstream's fields it leaves out.
pub fn upstream_fields_missing(answer: &str, fixture: &str) -> Vec<String> {
    let (ours, upstream) = (layout(answer), layout(fixture));
    let in_upstream_order: Vec<&String> = upstream.iter().filter(|k| ours.contains(k)).collect();
    assert_eq!(
        ours.iter().collect::<Vec<_>>(),
        in_upstream_order,
        "not upstream's fields in upstream's order: {answer}"
    );
    upstream.into_iter().filter(|k| !ours.contains(k)).collect()
}

/// The object keys of a JSON text in the order they first appear, each by its path
/// (`config.name`, `[].objects[].size_bytes`). serde_json's maps are sorted, so the text is
/// scanned.
fn layout(json: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    // The open objects and lists: their path, and whether a list.
    let mut open: Vec<(String, bool)> = Vec::new();
    let mut key = String::new();
    let mut chars = json.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => text.extend(chars.next()),
                        '"' => break,
                        c => text.push(c),
                    }
                }
                if let Some((object, false)) = open.last()
                    && chars.as_str().trim_start().starts_with(':')
                {
                    key = match object.as_str() {
                        "" => text,
                        object => format!("{object}.{text}"),
                    };
                    if !keys.contains(&key) {
                        keys.push(key.clone());
                    }
                }
            }
            '{' | '[' => {
                let path = match open.last() {
                    Some((list, true)) => format!("{list}[]"),
                    _ => key.clone(),
                };
                open.push((path, c == '['));
            }
            '}' | ']' => {
                open.pop();
            }
            _ => {}
        }
    }
    keys
}

/// Peak resident memory of this process so far (VmHWM), in bytes. Each test runs in its own
/// process under nextest, so the growth is the test's.
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// A loopback port nothing listens on right now.
/// The mirrors that send the suites' image pulls to the shared loopback registry.
pub fn test_mirrors() -> Vec<images::Mirror> {
    test_registry::shared_mirrors()
        .split(',')
        .map(|m| images::Mirror::parse(m).unwrap())
        .collect()
}

/// An `Authorization` value with HTTP Basic credentials.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// The app served on a real loopback socket, as `main` serves it.
pub async fn serve(app: &TestApp) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app.app.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    address
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A new, empty database on the PostgreSQL server of `TEST_DATABASE_URL`, or None when unset.
pub async fn fresh_postgres_database() -> Option<String> {
    let admin_url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty())?;
    let name = format!("oscar_test_{}", hex_suffix());
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unreachable: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url.as_str(), String::new()),
    };
    let base = base
        .rsplit_once('/')
        .map(|(prefix, _)| prefix)
        .unwrap_or(base);
    Some(format!("{base}/{name}{query}"))
}

fn hex_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", nanos, std::process::id())
}

/// A plain HTTP/1.1 request to a URL (a share link): what a browser or curl sends, with no
/// S3 client in between. Returns the status, the headers (lower-case names) and the body.
pub async fn fetch_url(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, std::collections::HashMap<String, String>, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, answer[end + 4..].to_vec())
}
