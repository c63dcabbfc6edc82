//! Exposed services in embedded mode (issue 25): instances run sandboxed, each with a network
//! of its own, and the server proxies `/system/services/<name>/exposed/` to them over real
//! HTTP (WebSockets need a real connection), with the service's access rule, the lifecycle
//! and supervision. And the same in Kubernetes mode, against the fake API server, whose
//! kubelet runs the Deployment's pods as local processes.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use common::cluster::{NAMESPACE, app_with, cluster};
use common::{ADMIN, PASSWORD, TestApp, jobs, serve};
use domain::kubernetes::{ExposedRoutes, RouteKind};
use http::StatusCode;
use serde_json::{Value, json};
use server::config::ExecutorConfig;
use test_registry::{Layer, Registry, TestImage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A small HTTP and WebSocket app in Python's standard library, as a service script (the host
/// executor: the host has Python). `/` and others echo what reached it; `/ws` echoes
/// WebSocket text frames; `/die` ends the process; `/stream?n=` streams `n` MiB.
const ECHO_APP: &str = r#"cat > "$TMPDIR/app.py" <<'EOF'
import base64, hashlib, os, socket, threading
def handle(c):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(4096)
        if not chunk:
            return
        data += chunk
    lines = data.split(b"\r\n\r\n")[0].decode().split("\r\n")
    target = lines[0].split(" ")[1]
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    if target == "/die" or target.endswith("/die"):
        os._exit(3)
    if headers.get("upgrade", "").lower() == "websocket":
        key = headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        accept = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
        c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n").encode())
        while True:
            head = c.recv(2)
            if len(head) < 2 or head[0] & 15 == 8:
                return
            mask = c.recv(4)
            payload = bytearray(c.recv(head[1] & 127))
            for i in range(len(payload)):
                payload[i] ^= mask[i % 4]
            c.sendall(bytes([0x81, len(payload)]) + bytes(payload))
    if "/stream?n=" in target:
        n = int(target.split("n=")[1]) * 1024 * 1024
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % n)
        block = b"x" * (1024 * 1024)
        for _ in range(n // len(block)):
            c.sendall(block)
        c.close()
        return
    body = "target=%s prefix=%s cookie=%s auth=%s" % (target, headers.get("x-forwarded-prefix", ""), headers.get("cookie", ""), headers.get("authorization", ""))
    body = body.encode()
    hostile = b"Set-Cookie: oscar_session=planted; Path=/\r\nClear-Site-Data: \"cookies\"\r\n" if "hostile" in target else b""
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: app=1\r\n" + hostile + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(os.environ.get("PORT", "8080"))))
s.listen(64)
print("echo app listening", flush=True)
while True:
    conn, _ = s.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
EOF
exec python3 "$TMPDIR/app.py"
"#;

fn echo_service(name: &str, expose: Value) -> Value {
    json!({
        "name": name,
        "image": "ghcr.io/grycap/alpine",
        "script": ECHO_APP,
        "memory": "256Mi",
        "cpu": "0.5",
        "expose": expose,
    })
}

struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }

    fn headers(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .filter_map(|line| {
                let (k, v) = line.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .collect()
    }
}

/// One HTTP/1.1 request on a new connection (`Connection: close`), read to its end.
async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Answer { status, head, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
}

/// Waits until the exposed path answers 200 (an instance is ready).
async fn until_served(address: SocketAddr, name: &str, headers: &[(&str, &str)]) -> Answer {
    let started = Instant::now();
    loop {
        let answer = request(
            address,
            "GET",
            &format!("/system/services/{name}/exposed/"),
            headers,
        )
        .await;
        if answer.status == 200 {
            return answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name} never answered: {} {}",
            answer.status,
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn host_app() -> TestApp {
    TestApp::with_config(|config| config.executor = ExecutorConfig::Host).await
}

async fn deployment(app: &mut TestApp, name: &str) -> Value {
    let response = app
        .rest("GET", &format!("/system/services/{name}/deployment"), None)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.json()
}

#[tokio::test]
async fn a_static_site_in_its_image_is_served_on_port_80_of_its_own_network() {
    let mut app = TestApp::new().await;
    let address = serve(&app).await;
    // busybox's httpd on port 80, which only root of a network of its own may take.
    jobs::create(
        &mut app,
        json!({
            "name": "site",
            "image": "ghcr.io/grycap/alpine",
            "script": "mkdir -p /tmp/www && echo '<h1>static hello</h1>' > /tmp/www/index.html\nexec httpd -f -v -p 80 -h /tmp/www\n",
            "expose": {"api_port": 80, "rewrite_target": true},
        }),
    )
    .await;
    let answer = until_served(address, "site", &[]).await;
    assert!(answer.text().contains("static hello"), "{}", answer.text());
    // Its pages run as an opaque origin, never as the dashboard's.
    let csp = answer.header("content-security-policy").unwrap();
    assert!(
        csp.starts_with("sandbox ") && !csp.contains("allow-same-origin"),
        "{csp}"
    );

    let status = deployment(&mut app, "site").await;
    assert_eq!(status["state"], "ready", "{status}");
    assert_eq!(status["resource_kind"], "exposed_service");
    assert_eq!(status["active_instances"], 1);
    let logs = app
        .rest(
            "GET",
            "/system/services/site/deployment/logs?timestamps=true",
            None,
        )
        .await
        .json();
    assert_eq!(logs["available"], true, "{logs}");
    let messages: Vec<&str> = logs["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("instance 0: ready")),
        "{messages:?}"
    );
    assert!(logs["entries"][0]["timestamp"].is_string());
    // The listing includes it too.
    let listed = app
        .rest("GET", "/system/services?include=deployment", None)
        .await
        .json();
    assert_eq!(listed[0]["deployment"]["resource_kind"], "exposed_service");
}

/// Upstream's `expose_services/nginx` shape: the image's own command (`default_command`),
/// here an nginx-like static server whose entrypoint, arguments and working directory come from
/// its image configuration, with no script at all.
#[tokio::test]
async fn an_image_with_its_own_command_is_served_as_it_is() {
    let registry = Registry::start(None);
    let image = TestImage::busybox()
        .with_layer(Layer::default().dir("www").file(
            "www/index.html",
            b"<h1>nginx-like</h1>",
            0o644,
        ))
        .with_command(&["httpd"], &["-f", "-p", "80", "-h", "."], "/www");
    let reference = registry.push("library/nginx:1", &image).await;
    let mut app = TestApp::new().await;
    let address = serve(&app).await;
    let response = app
        .rest(
            "POST",
            "/system/services",
            Some(json!({
                "name": "nginx",
                "image": reference,
                "memory": "128Mi",
                "cpu": "0.5",
                "expose": {"min_scale": 1, "max_scale": 2, "api_port": 80, "cpu_threshold": 70,
                           "default_command": true, "rewrite_target": true},
            })),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    let answer = until_served(address, "nginx", &[]).await;
    assert_eq!(answer.text(), "<h1>nginx-like</h1>");
}

#[tokio::test]
async fn requests_reach_the_app_without_the_platforms_session_and_websockets_work() {
    let mut app = host_app().await;
    let address = serve(&app).await;
    jobs::create(&mut app, echo_service("echo", json!({"api_port": 8080}))).await;
    until_served(address, "echo", &[]).await;

    let answer = request(
        address,
        "GET",
        "/system/services/echo/exposed/page?x=1",
        &[("Cookie", "oscar_session=stolen; theme=dark")],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    // Upstream's path (no rewrite_target), the base path, and no session cookie.
    assert!(
        text.contains("target=/system/services/echo/exposed/page?x=1"),
        "{text}"
    );
    assert!(
        text.contains("prefix=/system/services/echo/exposed"),
        "{text}"
    );
    assert!(
        text.contains("cookie=theme=dark ") && !text.contains("stolen"),
        "{text}"
    );
    // The app's own cookies come back, kept to its own path.
    assert_eq!(
        answer.header("set-cookie").as_deref(),
        Some("app=1; Path=/system/services/echo/exposed/")
    );
    // It never sets the platform's cookies or clears the visitor's, on the shared origin.
    let hostile = request(address, "GET", "/system/services/echo/exposed/hostile", &[]).await;
    assert_eq!(
        hostile.headers("set-cookie"),
        ["app=1; Path=/system/services/echo/exposed/"]
    );
    assert!(hostile.header("clear-site-data").is_none());
    // The admin's Basic credentials, which a browser resends under /system/, stay with us
    // even when the service asks for none.
    let answer = request(
        address,
        "GET",
        "/system/services/echo/exposed/",
        &[("Authorization", &common::basic_auth(ADMIN, PASSWORD))],
    )
    .await;
    assert!(answer.text().ends_with("auth="), "{}", answer.text());

    // A WebSocket, through the proxy and the instance's bridge.
    let mut socket = TcpStream::connect(address).await.unwrap();
    let handshake = format!(
        "GET /system/services/echo/exposed/ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    socket.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        socket.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    for message in ["hello", "again"] {
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | message.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(message.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        socket.write_all(&frame).await.unwrap();
        let mut reply = vec![0u8; 2 + message.len()];
        socket.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply[2..], message.as_bytes());
    }

    // rewrite_target: the app sees paths from its own root.
    let definition = echo_service("echo", json!({"api_port": 8080, "rewrite_target": true}));
    let response = app.rest("PUT", "/system/services", Some(definition)).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT, "{}", response.body);
    let started = Instant::now();
    loop {
        let answer = request(address, "GET", "/system/services/echo/exposed/page", &[]).await;
        if answer.text().contains("target=/page ") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The path as the client encoded it: `%3F` stays in the path, never a query.
    let answer = request(
        address,
        "GET",
        "/system/services/echo/exposed/a%3Fb%20c",
        &[],
    )
    .await;
    assert!(
        answer.text().contains("target=/a%3Fb%20c "),
        "{}",
        answer.text()
    );
}

#[tokio::test]
async fn set_auth_lets_in_the_token_and_those_the_service_is_shared_with() {
    let mut app = host_app().await;
    let address = serve(&app).await;
    let token = jobs::create(
        &mut app,
        echo_service("guarded", json!({"api_port": 8080, "set_auth": true})),
    )
    .await;
    let base = "/system/services/guarded/exposed/";

    // Nobody, a wrong token, the token under another user name: refused, and a browser is
    // asked for credentials.
    let anonymous = request(address, "GET", base, &[]).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate").as_deref(),
        Some("Basic realm=\"guarded\"")
    );
    let wrong = "0".repeat(64);
    for header in [
        common::basic_auth("guarded", &wrong),
        format!("Bearer {wrong}"),
        common::basic_auth(ADMIN, "not-the-password"),
    ] {
        let answer = request(address, "GET", base, &[("Authorization", &header)]).await;
        assert_eq!(answer.status, 401, "{header}: {}", answer.text());
    }
    assert_eq!(
        request(address, "GET", &format!("{base}?token={wrong}"), &[])
            .await
            .status,
        401
    );

    // The token as Basic (upstream's), as Bearer; the admin; all without the credentials
    // reaching the app.
    for header in [
        common::basic_auth("guarded", &token),
        format!("Bearer {token}"),
        common::basic_auth(ADMIN, PASSWORD),
    ] {
        let answer = until_served(address, "guarded", &[("Authorization", &header)]).await;
        assert!(
            answer.text().contains("auth= ") || answer.text().ends_with("auth="),
            "{}",
            answer.text()
        );
    }
    // `?token=` sets the cookie later requests carry; the cookie never reaches the app.
    let answer = request(address, "GET", &format!("{base}?token={token}"), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let cookies = answer.headers("set-cookie");
    // The app's own cookie, and the platform's.
    assert_eq!(cookies[0], "app=1; Path=/system/services/guarded/exposed/");
    let cookie = &cookies[1];
    assert!(
        cookie.starts_with("oscar_service_guarded_auth="),
        "{cookie}"
    );
    assert!(
        cookie.contains("Path=/system/services/guarded/exposed") && cookie.contains("HttpOnly")
    );
    let pair = cookie.split(';').next().unwrap();
    let answer = request(
        address,
        "GET",
        &format!("{base}style.css"),
        &[("Cookie", pair)],
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(
        !answer.text().contains("oscar_service_guarded_auth"),
        "{}",
        answer.text()
    );

    // A signed-in dashboard user the service is visible to (the admin here).
    app.login().await;
    let session = app.cookie().unwrap().to_string();
    let answer = request(address, "GET", base, &[("Cookie", &session)]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    // Upstream's forward-auth endpoint answers the same.
    let auth = "/system/services/guarded/auth";
    assert_eq!(request(address, "GET", auth, &[]).await.status, 401);
    let ok = request(address, "GET", &format!("{auth}?token={token}"), &[]).await;
    assert_eq!(ok.status, 200);
    assert!(
        ok.header("set-cookie")
            .unwrap()
            .starts_with("oscar_service_guarded_auth=")
    );
    let forwarded = format!("{base}?token={token}");
    let via_proxy = request(address, "GET", auth, &[("X-Forwarded-Uri", &forwarded)]).await;
    assert_eq!(via_proxy.status, 200);
    // Not for a service that is not exposed, nor one that does not exist.
    jobs::create(&mut app, jobs::service("plain", jobs::UPPERCASE)).await;
    for path in [
        "/system/services/plain/auth",
        "/system/services/nothing/auth",
    ] {
        let answer = request(address, "GET", &format!("{path}?token={token}"), &[]).await;
        assert_eq!(answer.status, 404, "{path}");
    }
    assert_eq!(
        request(address, "GET", "/system/services/plain/exposed/", &[])
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn owners_stop_start_and_restart_and_a_dying_instance_comes_back() {
    let mut app = host_app().await;
    let address = serve(&app).await;
    jobs::create(&mut app, echo_service("life", json!({"api_port": 8080}))).await;
    until_served(address, "life", &[]).await;

    // The app exits: the instance is started again, and the log says why.
    let died = request(address, "GET", "/system/services/life/exposed/die", &[]).await;
    assert_eq!(died.status, 502, "{}", died.text());
    until_served(address, "life", &[]).await;
    let logs = app
        .rest("GET", "/system/services/life/deployment/logs", None)
        .await
        .json();
    let text = logs["entries"].to_string();
    assert!(text.contains("instance 0: exited"), "{text}");
    assert!(text.contains("echo app listening"), "{text}");

    let stopped = app.rest("POST", "/system/services/life/stop", None).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.body);
    assert_eq!(stopped.json()["state"], "stopped");
    let refused = request(address, "GET", "/system/services/life/exposed/", &[]).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.text().contains("stopped"), "{}", refused.text());
    assert_eq!(deployment(&mut app, "life").await["state"], "stopped");

    let started = app.rest("POST", "/system/services/life/start", None).await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    until_served(address, "life", &[]).await;

    let restarted = app
        .rest("POST", "/system/services/life/restart", None)
        .await;
    assert_eq!(restarted.status, StatusCode::OK, "{}", restarted.body);
    until_served(address, "life", &[]).await;
    let logs = app
        .rest("GET", "/system/services/life/deployment/logs", None)
        .await
        .json();
    assert!(logs["entries"].to_string().contains("deployed"), "{logs}");

    // Lifecycle is for exposed services, and for their owners.
    jobs::create(&mut app, jobs::service("plain", jobs::UPPERCASE)).await;
    let not_exposed = app.rest("POST", "/system/services/plain/stop", None).await;
    assert_eq!(
        not_exposed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        not_exposed.body
    );
    assert!(
        not_exposed.body.contains("expose.api_port"),
        "{}",
        not_exposed.body
    );
    let anonymous = app
        .rest_as("POST", "/system/services/life/stop", None, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let missing = app
        .rest("POST", "/system/services/nothing/restart", None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Deleting the service ends its instances.
    let deleted = app.rest("DELETE", "/system/services/life", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = request(address, "GET", "/system/services/life/exposed/", &[]).await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn a_1_gib_response_streams_through_the_proxy_with_bounded_memory() {
    const MIB: usize = 1024;
    let mut app = host_app().await;
    let address = serve(&app).await;
    jobs::create(&mut app, echo_service("big", json!({"api_port": 8080}))).await;
    until_served(address, "big", &[]).await;
    let before = common::peak_rss();
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "GET /system/services/big/exposed/stream?n={MIB} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut total = 0usize;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = stream.read(&mut buffer).await.unwrap();
        if read == 0 {
            break;
        }
        total += read;
    }
    assert!(total > MIB << 20, "read {total} bytes");
    let growth = common::peak_rss().saturating_sub(before);
    assert!(
        growth < 64 << 20,
        "peak memory grew by {} MiB",
        growth >> 20
    );
}

#[tokio::test]
async fn definitions_that_cannot_be_exposed_are_refused_with_their_field() {
    let mut app = TestApp::new().await;
    for (expose, field) in [
        (
            json!({"api_port": 8080, "min_scale": 3, "max_scale": 2}),
            "expose.min_scale",
        ),
        (
            json!({"api_port": 8080, "auth_type": "digest"}),
            "expose.auth_type",
        ),
        (
            json!({"api_port": 8080, "health_path": "health"}),
            "expose.health_path",
        ),
        (json!({"api_port": 70000}), "api_port"),
        (json!("yes"), "expose"),
    ] {
        let response = app
            .rest(
                "POST",
                "/system/services",
                Some(echo_service("bad", expose.clone())),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{expose}: {}",
            response.body
        );
        assert!(response.body.contains(field), "{expose}: {}", response.body);
    }
    // Upstream's documented defaults are applied, and shown.
    jobs::create(
        &mut app,
        echo_service("defaults", json!({"api_port": "8080"})),
    )
    .await;
    let read = app
        .rest("GET", "/system/services/defaults", None)
        .await
        .json();
    assert_eq!(read["expose"]["api_port"], json!([8080]));
    assert_eq!(read["expose"]["max_scale"], 10);
    assert_eq!(read["expose"]["health_path"], "/");
    assert_eq!(read["expose"]["auth_type"], "basic");
}

/// `/run` of the warm service, its response decoded.
async fn run(app: &mut TestApp, bearer: &str) -> String {
    let answer = app.invoke("/run/warm", bearer, "{}").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(answer.body.trim())
        .unwrap();
    String::from_utf8(decoded).unwrap().trim().to_string()
}

/// Issue 25: a synchronous service with `synchronous.min_scale` answers `/run` from warm
/// workers: one sandbox kept running (its `/tmp` lives on between requests, which a cold run
/// never sees), each request still a job with its own log.
async fn warm_workers_answer_run(mut app: TestApp) {
    let counter = "n=$(cat /tmp/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/count\necho \"log line of run $n\"\necho \"run $n\" > \"$TMP_OUTPUT_DIR/out.txt\"\n";
    let mut definition = jobs::service("warm", counter);
    definition["synchronous"] = json!({"min_scale": 1, "max_scale": 2});
    let token = jobs::create(&mut app, definition).await;
    let bearer = format!("Bearer {token}");
    // Once the worker is up, runs count on: the same sandbox served them.
    let started = Instant::now();
    let mut first = 0;
    while first < 2 {
        first = run(&mut app, &bearer)
            .await
            .trim_start_matches("run ")
            .parse()
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no warm worker"
        );
    }
    for expected in first + 1..first + 4 {
        assert_eq!(run(&mut app, &bearer).await, format!("run {expected}"));
    }
    // Each was a job, with its own lines in its own log.
    let listed = jobs::jobs(&mut app, "warm").await;
    assert!(listed.len() >= 5, "{listed:?}");
    let mut seen = Vec::new();
    for job in listed.keys() {
        let log = jobs::log(&mut app, "warm", job).await;
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("log line of run"))
            .collect();
        assert_eq!(lines.len(), 1, "{job}: {log}");
        seen.push(lines[0].to_string());
    }
    seen.sort();
    seen.dedup();
    assert!(
        seen.len() >= 5,
        "every job has its own run's line: {seen:?}"
    );
}

#[tokio::test]
async fn warm_workers_answer_run_in_the_services_image() {
    warm_workers_answer_run(TestApp::new().await).await;
}

#[tokio::test]
async fn warm_workers_answer_run_with_the_host_programs() {
    warm_workers_answer_run(host_app().await).await;
}

/// More callers at once than workers: each waits for an idle worker (or one started for it,
/// up to `max_scale`), and every run succeeds with its own answer.
#[tokio::test]
async fn concurrent_runs_share_the_warm_workers() {
    let mut app = TestApp::new().await;
    let mut definition = jobs::service(
        "warm",
        "echo \"answer $JOB_UUID\" > \"$TMP_OUTPUT_DIR/out.txt\"\n",
    );
    definition["synchronous"] = json!({"min_scale": 1, "max_scale": 4});
    let token = jobs::create(&mut app, definition).await;
    let bearer = format!("Bearer {token}");
    run(&mut app, &bearer).await;
    let router = app.app.router.clone();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (router, bearer) = (router.clone(), bearer.clone());
            tokio::spawn(async move {
                use tower::ServiceExt;
                let mut answers = Vec::new();
                for _ in 0..25 {
                    let request = http::Request::post("/run/warm")
                        .header(http::header::AUTHORIZATION, &bearer)
                        .body(axum::body::Body::from("{}"))
                        .unwrap();
                    let answer = router.clone().oneshot(request).await.unwrap();
                    let status = answer.status();
                    let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
                        .await
                        .unwrap();
                    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
                    answers.push(body);
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.await.unwrap());
    }
    answers.sort();
    answers.dedup();
    assert_eq!(answers.len(), 200, "each run answered its own job");
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Waits until `check` holds for the fake cluster, for at most 30 s.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(30), "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kubernetes mode: the service is a Deployment with its Service, autoscaler, script and
/// route; the platform's proxy reaches it through the Service's address; stop, start and
/// restart act on the cluster; `set_auth` takes the direct route away; deletion removes it
/// all.
#[tokio::test]
async fn on_kubernetes_an_exposed_service_is_a_deployment_behind_the_proxy() {
    let cluster = cluster().await;
    let routes = ExposedRoutes {
        host: "apps.example.org".into(),
        via: RouteKind::Gateway {
            namespace: "gateway-system".into(),
            name: "gateway".into(),
        },
    };
    let mut app = app_with(&cluster, Duration::from_secs(60), None, Some(routes)).await;
    let address = serve(&app).await;
    // The fake's pods share this machine's network: the app listens on a free port.
    let port = free_port();
    let mut definition = echo_service(
        "kecho",
        json!({"api_port": port, "rewrite_target": true, "max_scale": 3}),
    );
    definition["environment"] = json!({"variables": {"PORT": port.to_string()}});
    let token = jobs::create(&mut app, definition.clone()).await;
    let fake = &cluster.fake;
    let deployment_object = fake.get("deployments", NAMESPACE, "kecho-dlp").unwrap();
    assert_eq!(deployment_object["spec"]["replicas"], 1);
    let container = &deployment_object["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["command"],
        json!(["/bin/sh", "/oscar/config/script.sh"])
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], port);
    assert_eq!(
        fake.get("services", NAMESPACE, "kecho-svc").unwrap()["spec"]["ports"][0]["port"],
        port
    );
    let hpa = fake
        .get("horizontalpodautoscalers", NAMESPACE, "kecho-hpa")
        .unwrap();
    assert_eq!(hpa["spec"]["maxReplicas"], 3);
    assert!(
        fake.get("configmaps", NAMESPACE, "kecho-script").unwrap()["data"]["script.sh"]
            .as_str()
            .unwrap()
            .contains("echo app listening")
    );
    let route = fake.get("httproutes", NAMESPACE, "kecho-route").unwrap();
    assert_eq!(
        route["spec"]["hostnames"],
        json!(["kecho.apps.example.org"])
    );

    // Through the platform's proxy, the path rewritten; the deployment and its log are the
    // cluster's.
    let answer = until_served(address, "kecho", &[]).await;
    assert!(
        answer
            .text()
            .contains("target=/ prefix=/system/services/kecho/exposed"),
        "{}",
        answer.text()
    );
    until("the deployment is ready", || {
        fake.get("deployments", NAMESPACE, "kecho-dlp").unwrap()["status"]["readyReplicas"] == 1
    })
    .await;
    let state = deployment(&mut app, "kecho").await;
    assert_eq!(state["state"], "ready", "{state}");
    assert_eq!(state["active_instances"], 1, "{state}");
    assert_eq!(state["namespace"], NAMESPACE, "{state}");
    let logs = app
        .rest(
            "GET",
            "/system/services/kecho/deployment/logs?timestamps=true",
            None,
        )
        .await
        .json();
    assert_eq!(logs["available"], true, "{logs}");
    let entries = logs["entries"].to_string();
    assert!(entries.contains("echo app listening"), "{entries}");
    assert!(
        logs["entries"][0]["timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with("20")),
        "{logs}"
    );
    let view = app
        .rest("GET", "/system/services/kecho/deployment", None)
        .await;
    assert_eq!(view.status, StatusCode::OK);

    // Stop: no replicas, the count kept, no autoscaler; the proxy says why.
    let pods = || {
        fake.list("pods", Some(NAMESPACE))
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/component"] == "exposed")
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let stopped = app.rest("POST", "/system/services/kecho/stop", None).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.body);
    let stopped_object = fake.get("deployments", NAMESPACE, "kecho-dlp").unwrap();
    assert_eq!(stopped_object["spec"]["replicas"], 0);
    assert_eq!(
        stopped_object["metadata"]["annotations"]["oscar.grycap.io/previous-replicas"],
        "1"
    );
    assert!(
        fake.get("horizontalpodautoscalers", NAMESPACE, "kecho-hpa")
            .is_none()
    );
    until("the pod is gone", || pods().is_empty()).await;
    let refused = request(address, "GET", "/system/services/kecho/exposed/", &[]).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    let state = deployment(&mut app, "kecho").await;
    assert_eq!(state["state"], "stopped", "{state}");
    assert_eq!(
        state["reason"],
        format!("stopped by {}", domain::access::ADMIN_OWNER),
        "{state}"
    );
    // Saving a stopped service keeps it stopped.
    let saved = app
        .rest("PUT", "/system/services", Some(definition.clone()))
        .await;
    assert_eq!(saved.status, StatusCode::NO_CONTENT, "{}", saved.body);
    assert_eq!(
        fake.get("deployments", NAMESPACE, "kecho-dlp").unwrap()["spec"]["replicas"],
        0
    );

    // Start: the replicas and the autoscaler are back, and so are the answers.
    let started = app.rest("POST", "/system/services/kecho/start", None).await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    let started_object = fake.get("deployments", NAMESPACE, "kecho-dlp").unwrap();
    assert_eq!(started_object["spec"]["replicas"], 1);
    assert!(
        started_object["metadata"]["annotations"]
            .get("oscar.grycap.io/previous-replicas")
            .is_none()
    );
    assert!(
        fake.get("horizontalpodautoscalers", NAMESPACE, "kecho-hpa")
            .is_some()
    );
    until_served(address, "kecho", &[]).await;

    // Restart: a rollout replaces the pod.
    let before = pods();
    assert_eq!(before.len(), 1, "{before:?}");
    let restarted = app
        .rest("POST", "/system/services/kecho/restart", None)
        .await;
    assert_eq!(restarted.status, StatusCode::OK, "{}", restarted.body);
    until("a new pod replaces the old one", || {
        let now = pods();
        now.len() == 1 && now != before
    })
    .await;
    until_served(address, "kecho", &[]).await;

    // A new script rolls the pods (it lives in a ConfigMap, outside the pods' spec).
    let before = pods();
    definition["script"] = json!(format!("{ECHO_APP}# v2\n"));
    let saved = app
        .rest("PUT", "/system/services", Some(definition.clone()))
        .await;
    assert_eq!(saved.status, StatusCode::NO_CONTENT, "{}", saved.body);
    until("the new script's pod replaces the old one", || {
        let now = pods();
        now.len() == 1 && now != before
    })
    .await;
    until_served(address, "kecho", &[]).await;

    // set_auth: the direct route goes (it would let anyone in), the proxy asks for the token.
    definition["expose"]["set_auth"] = json!(true);
    let saved = app.rest("PUT", "/system/services", Some(definition)).await;
    assert_eq!(saved.status, StatusCode::NO_CONTENT, "{}", saved.body);
    assert!(fake.get("httproutes", NAMESPACE, "kecho-route").is_none());
    let anonymous = request(address, "GET", "/system/services/kecho/exposed/", &[]).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    until_served(
        address,
        "kecho",
        &[("Authorization", &common::basic_auth("kecho", &token))],
    )
    .await;

    // Deleted: every object goes.
    let deleted = app.rest("DELETE", "/system/services/kecho", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    for (resource, name) in [
        ("deployments", "kecho-dlp"),
        ("services", "kecho-svc"),
        ("horizontalpodautoscalers", "kecho-hpa"),
        ("configmaps", "kecho-script"),
        ("httproutes", "kecho-route"),
    ] {
        assert!(
            fake.get(resource, NAMESPACE, name).is_none(),
            "{resource} {name}"
        );
    }
    until("the pod is gone", || pods().is_empty()).await;
    common::cluster::assert_the_role_allows(fake);
}

/// Records `deployment`'s last request long ago, as if no server had used it since, and has
/// the server take idle services down.
async fn idle_long_ago(app: &TestApp, fake: &fake_kube::FakeCluster, deployment: &str) {
    use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
    let kind = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"));
    let deployments: Api<DynamicObject> = Api::namespaced_with(fake.client(), NAMESPACE, &kind);
    let old = json!({"metadata": {"annotations": {"oscar.grycap.io/last-request": "2026-01-01T00:00:00Z"}}});
    deployments
        .patch(deployment, &PatchParams::default(), &Patch::Merge(&old))
        .await
        .unwrap();
    let state = &app.app.state;
    state
        .exposed
        .scale_idle(&state.db, &state.services)
        .await
        .unwrap();
}

/// Kubernetes mode, `min_scale: 0`: the Deployment rests at 0 replicas until a request wakes
/// it, the request is recorded on it for every server, and once no server recorded one for
/// the idle time it goes back to 0, to be woken again.
#[tokio::test]
async fn on_kubernetes_min_scale_0_wakes_on_a_request_and_rests_when_idle() {
    let cluster = cluster().await;
    let mut app = app_with(&cluster, Duration::from_secs(60), None, None).await;
    let address = serve(&app).await;
    let port = free_port();
    let mut definition = echo_service("kidle", json!({"api_port": port, "min_scale": 0}));
    definition["environment"] = json!({"variables": {"PORT": port.to_string()}});
    jobs::create(&mut app, definition).await;
    let fake = &cluster.fake;
    let replicas =
        || fake.get("deployments", NAMESPACE, "kidle-dlp").unwrap()["spec"]["replicas"].clone();
    assert_eq!(replicas(), 0);
    assert!(fake.list("pods", Some(NAMESPACE)).is_empty());
    let state = deployment(&mut app, "kidle").await;
    assert_eq!(state["state"], "ready", "{state}");
    assert!(
        state["reason"].as_str().unwrap().contains("first request"),
        "{state}"
    );

    // The first request starts an instance and is answered once it is ready.
    let answer = request(address, "GET", "/system/services/kidle/exposed/", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(replicas(), 1);
    let recorded = fake.get("deployments", NAMESPACE, "kidle-dlp").unwrap();
    assert!(
        recorded["metadata"]["annotations"]["oscar.grycap.io/last-request"].is_string(),
        "{recorded}"
    );

    // Used recently: left running.
    let state = &app.app.state;
    state
        .exposed
        .scale_idle(&state.db, &state.services)
        .await
        .unwrap();
    assert_eq!(replicas(), 1);

    // No request recorded for longer than the idle time: back to 0.
    idle_long_ago(&app, fake, "kidle-dlp").await;
    assert_eq!(replicas(), 0);
    until("its pod is gone", || {
        fake.list("pods", Some(NAMESPACE)).is_empty()
    })
    .await;
    // The fake kubelet stops a deleted pod's process a moment later; until then the port
    // would make the next pod ready early.
    until("its process has stopped", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    })
    .await;

    // And woken again by the next request.
    let answer = request(address, "GET", "/system/services/kidle/exposed/", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(replicas(), 1);
    common::cluster::assert_the_role_allows(fake);
}

/// An exposed service serves what its jobs left in a volume they share with it.
#[tokio::test]
async fn an_exposed_service_serves_files_its_jobs_wrote_to_their_volume() {
    let mut app = TestApp::new().await;
    let address = serve(&app).await;
    let made = app
        .rest(
            "POST",
            "/system/volumes",
            Some(json!({"name": "site-data", "size": "10Mi"})),
        )
        .await;
    assert_eq!(made.status, http::StatusCode::CREATED, "{}", made.body);
    let mut writer = jobs::service("writer", "cp \"$INPUT_FILE_PATH\" /shared/index.html\n");
    writer["volume"] = json!({"name": "site-data", "mount_path": "/shared"});
    jobs::create(&mut app, writer).await;
    jobs::put(&app, "writer", "in/page", b"<h1>written by a job</h1>").await;
    jobs::finished(&mut app, "writer", 1).await;
    jobs::create(
        &mut app,
        json!({
            "name": "reader",
            "image": "ghcr.io/grycap/alpine",
            "script": "exec httpd -f -v -p 80 -h /www\n",
            "expose": {"api_port": 80, "rewrite_target": true},
            "volume": {"name": "site-data", "mount_path": "/www"},
        }),
    )
    .await;
    let answer = until_served(address, "reader", &[]).await;
    assert!(
        answer.text().contains("written by a job"),
        "{}",
        answer.text()
    );
}

/// Issue 26: an exposed service's instances see its `mount` as its jobs do, at
/// `/mnt/<path>`: they serve the folder of the store and write to it, seeing nothing beside it.
#[tokio::test]
async fn an_exposed_service_serves_and_writes_its_mounted_folder() {
    let mut app = TestApp::new().await;
    let address = serve(&app).await;
    let mut definition = json!({
        "name": "site",
        "image": "ghcr.io/grycap/alpine",
        "script": "ls -a /mnt > /mnt/site-files/www/beside.txt\n\
                   exec httpd -f -v -p 80 -h /mnt/site-files/www\n",
        "expose": {"api_port": 80, "rewrite_target": true},
    });
    definition["mount"] = json!({"storage_provider": "minio", "path": "site-files/www"});
    jobs::create(&mut app, definition).await;
    jobs::put(
        &app,
        "site-files",
        "www/index.html",
        b"<h1>from the bucket</h1>",
    )
    .await;
    let answer = until_served(address, "site", &[]).await;
    assert!(
        answer.text().contains("from the bucket"),
        "{}",
        answer.text()
    );
    assert_eq!(
        jobs::get(&app, "site-files", "www/beside.txt")
            .await
            .as_deref(),
        Some(&b".\n..\nsite-files\n"[..])
    );

    // Its rclone dies: the instance, whose /mnt is dead, starts again with a new mount.
    let data_dir = app.config.data_dir.display().to_string();
    let rclone = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .find(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("OSCAR:site-files/www") && cmdline.contains(&data_dir)
        })
        .expect("the instance's rclone");
    let pid = rclone.file_name().to_string_lossy().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    loop {
        let logs = app
            .rest("GET", "/system/services/site/deployment/logs", None)
            .await
            .body;
        if logs.contains("its mount ended") && logs.matches(": ready").count() >= 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{logs}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let answer = until_served(address, "site", &[]).await;
    assert!(
        answer.text().contains("from the bucket"),
        "{}",
        answer.text()
    );
}

/// Warm workers see the service's `mount` too: runs served by one worker (its `/tmp` counter
/// goes on) read the folder and write to it, and what they wrote is in the store when `/run`
/// answers.
#[tokio::test]
async fn warm_workers_read_and_write_their_mounted_folder() {
    let mut app = TestApp::new().await;
    let script = "n=$(cat /tmp/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/count\n\
                  echo \"run $n: $(cat /mnt/team/data/in.txt)\" > \"$TMP_OUTPUT_DIR/out.txt\"\n\
                  echo \"written by run $n\" > /mnt/team/data/run-$n.txt\n";
    let mut definition = jobs::service("warm", script);
    definition["synchronous"] = json!({"min_scale": 1});
    definition["mount"] = json!({"storage_provider": "minio", "path": "team/data"});
    let token = jobs::create(&mut app, definition).await;
    jobs::put(&app, "team", "data/in.txt", b"hello").await;
    let bearer = format!("Bearer {token}");
    let started = Instant::now();
    loop {
        let answer = run(&mut app, &bearer).await;
        let (run, read) = answer.split_once(": ").unwrap();
        assert_eq!(read, "hello", "{answer}");
        let n: u32 = run.trim_start_matches("run ").parse().unwrap();
        assert_eq!(
            jobs::get(&app, "team", &format!("data/run-{n}.txt"))
                .await
                .as_deref(),
            Some(format!("written by run {n}\n").as_bytes())
        );
        // The second run of one sandbox: a warm worker's.
        if n >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no warm worker"
        );
    }
}

/// Kubernetes mode, `synchronous.min_scale`: the service gets a worker Deployment, Service
/// and token Secret; `/run` is answered by the warm pod (its `$HOME` lives on between
/// requests, which a Job never sees), no Job is made, each request is still a job with its
/// own log. A second request while the worker is busy asks for another (up to `max_scale`)
/// and is answered once one is free; idle, the workers go back to `min_scale`. Nobody but
/// the platform can make a worker run: a request without the token is refused. Deleting the
/// service deletes them. With no worker ready (an image that never pulls), `/run` runs as a
/// Job, which says why it failed.
#[tokio::test]
async fn on_kubernetes_warm_workers_answer_run() {
    use model::function::work::{ClusterWork, Frame};

    let cluster = cluster().await;
    let mut app = app_with(&cluster, Duration::from_secs(3), None, None).await;
    let script = "if grep -q slow \"$INPUT_FILE_PATH\"; then sleep 2; fi\nn=$(cat \"$HOME/count\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$HOME/count\"\necho \"log line of run $n\"\necho \"run $n\" > \"$TMP_OUTPUT_DIR/out.txt\"\n";
    let mut definition = jobs::service("kwarm", script);
    definition["synchronous"] = json!({"min_scale": 1, "max_scale": 2});
    let token = jobs::create(&mut app, definition).await;
    let bearer = format!("Bearer {token}");
    let fake = &cluster.fake;
    let deployment = || fake.get("deployments", NAMESPACE, "kwarm-wrk");
    assert_eq!(deployment().unwrap()["spec"]["replicas"], 1);
    assert!(fake.get("services", NAMESPACE, "kwarm-wrk").is_some());
    let secret = fake.get("secrets", NAMESPACE, "kwarm-wrk").unwrap();
    until("a worker is ready", || {
        deployment().unwrap()["status"]["readyReplicas"].as_i64() >= Some(1)
    })
    .await;

    // One warm pod answers them all, in order.
    let router = app.app.router.clone();
    let answer = |body: &'static str| {
        let (bearer, router) = (bearer.clone(), router.clone());
        async move {
            use tower::ServiceExt;
            let request = http::Request::post("/run/kwarm")
                .header(http::header::AUTHORIZATION, &bearer)
                .body(axum::body::Body::from(body))
                .unwrap();
            let answer = router.oneshot(request).await.unwrap();
            let status = answer.status();
            let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
                .await
                .unwrap();
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(String::from_utf8_lossy(&body).trim())
                .unwrap();
            String::from_utf8(decoded).unwrap().trim().to_string()
        }
    };
    for n in 1..=3 {
        assert_eq!(answer("{}").await, format!("run {n}"));
    }
    assert!(fake.list("jobs", Some(NAMESPACE)).is_empty(), "no Job");
    let listed = jobs::jobs(&mut app, "kwarm").await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    for job in listed.keys() {
        let log = jobs::log(&mut app, "kwarm", job).await;
        assert_eq!(
            log.lines()
                .filter(|l| l.contains("log line of run"))
                .count(),
            1,
            "{job}: {log}"
        );
    }

    // Two at once: the busy worker is asked for a second, and both are answered.
    let (first, second) = tokio::join!(answer("{\"slow\": true}"), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        answer("{}").await
    });
    let mut both = [first, second];
    both.sort();
    assert_eq!(both, ["run 4", "run 5"], "the warm pod answered both");
    assert_eq!(deployment().unwrap()["spec"]["replicas"], 2);
    assert!(fake.list("jobs", Some(NAMESPACE)).is_empty(), "no Job");

    // Idle: back to min_scale.
    idle_long_ago(&app, fake, "kwarm-wrk").await;
    assert_eq!(deployment().unwrap()["spec"]["replicas"], 1);

    // Without the token, the worker runs nothing.
    let port = fake.get("services", NAMESPACE, "kwarm-wrk").unwrap()["spec"]["ports"][0]["port"]
        .as_u64()
        .unwrap();
    let forged = ClusterWork {
        token: "guessed".into(),
        job: "kwarm-forged".into(),
        env: vec![],
        timeout_secs: 5,
        memory: None,
        config: String::new(),
        script: "echo pwned".into(),
        access_key: String::new(),
        secret_key: String::new(),
        event_len: 0,
    };
    let mut stream = TcpStream::connect(("127.0.0.1", port as u16))
        .await
        .unwrap();
    let mut line = serde_json::to_vec(&forged).unwrap();
    line.push(b'\n');
    stream.write_all(&line).await.unwrap();
    let mut answer_bytes = Vec::new();
    stream.read_to_end(&mut answer_bytes).await.unwrap();
    let (frame, _) = Frame::decode(&answer_bytes).unwrap().unwrap();
    assert!(matches!(frame, Frame::Refused(_)), "{frame:?}");
    assert!(secret["data"]["OSCAR_SERVE_TOKEN"].is_string());

    // Deleted: the workers go with it.
    let deleted = app.rest("DELETE", "/system/services/kwarm", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    for resource in ["deployments", "services", "secrets"] {
        assert!(
            fake.get(resource, NAMESPACE, "kwarm-wrk").is_none(),
            "{resource}"
        );
    }

    // No worker ready: a Job, as without workers.
    let mut cold = jobs::service("kcold", "echo never");
    cold["image"] = json!(common::cluster::UNPULLABLE);
    cold["synchronous"] = json!({"min_scale": 1});
    let token = jobs::create(&mut app, cold).await;
    let answer = app
        .invoke("/run/kcold", &format!("Bearer {token}"), "{}")
        .await;
    assert!(answer.status.is_server_error(), "{}", answer.body);
    assert!(
        answer.body.contains("Back-off pulling image"),
        "{}",
        answer.body
    );
    assert!(fake.get("deployments", NAMESPACE, "kcold-wrk").is_some());
    let made = format!("POST /apis/batch/v1/namespaces/{NAMESPACE}/jobs");
    let jobs_made = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with(&made))
        .count();
    assert_eq!(jobs_made, 1, "one Job, deleted since as it could not start");
    common::cluster::assert_the_role_allows(fake);
}
