//! Hostile input. Text (object keys, scripts, log lines) reaches the pages as text, never as
//! markup. Bodies and lines (invocations, server functions, job output) are read only from
//! callers that may send them, and only up to their limits.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::TestApp;
use common::jobs;
use http::StatusCode;

const KEY_MARKUP: &str = "<img src=x onerror=alert(1)>";
const SCRIPT_MARKUP: &str = "</script><script>alert(\"script\")</script>";
const LOG_MARKUP: &str = "<script>alert('log')</script>";

/// The raw markup must not appear anywhere in a page (attribute, text, or the serialized
/// resources in its `<script>` tags).
fn assert_inert(page: &str, markup: &str, path: &str) {
    assert!(
        !page.contains(markup),
        "{path} carries {markup:?} unescaped:\n{page}"
    );
}

#[tokio::test]
async fn keys_scripts_and_log_lines_render_as_text() {
    let mut app = TestApp::new().await;
    let script = format!("echo \"{LOG_MARKUP}\"\n# {SCRIPT_MARKUP}\n");
    jobs::create(&mut app, jobs::service("hostile", &script)).await;
    let key = format!("in/{KEY_MARKUP}.txt");
    jobs::put(&app, "hostile", &key, b"data").await;
    let finished = jobs::finished(&mut app, "hostile", 1).await;
    let job = finished.keys().next().unwrap().clone();
    assert!(
        jobs::log(&mut app, "hostile", &job)
            .await
            .contains(LOG_MARKUP)
    );

    app.login().await;
    for path in [
        "/services",
        "/services/hostile",
        "/jobs",
        "/buckets/hostile?prefix=in/",
    ] {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for markup in [KEY_MARKUP, SCRIPT_MARKUP, LOG_MARKUP] {
            assert_inert(&page.body, markup, path);
        }
    }
    // The pages do show the hostile names, as text.
    let bucket = app.get("/buckets/hostile?prefix=in/").await.body;
    assert!(
        bucket.contains("&lt;img src=x onerror=alert(1)&gt;")
            || bucket.contains("\\u003cimg src=x onerror=alert(1)\\u003e"),
        "the key is not listed: {bucket}"
    );

    // Logs reach the browser as JSON (rendered as text) or plain text, never as HTML.
    let log = app
        .call("jobs/log", &[("service", "hostile"), ("job", &job)])
        .await;
    assert_eq!(log.status, StatusCode::OK);
    assert!(log.json().as_str().unwrap().contains(LOG_MARKUP));
    let rest = app
        .rest("GET", &format!("/system/logs/hostile/{job}"), None)
        .await;
    let content_type = rest
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(!content_type.contains("html"), "{content_type}");
}

/// A request body that records whether anyone read it, and the record.
fn watched_body() -> (axum::body::Body, Arc<AtomicBool>) {
    let read = Arc::new(AtomicBool::new(false));
    let record = read.clone();
    let body = axum::body::Body::from_stream(futures_util::stream::once(async move {
        record.store(true, Ordering::SeqCst);
        Ok::<_, std::io::Error>(vec![b'x'; 1024])
    }));
    (body, read)
}

/// Issue 20.4: invocation bodies are read only once the caller is known, and only up to
/// `OSCAR_MAX_PAYLOAD_BYTES` (413 naming it, whether the length is declared or not).
#[tokio::test]
async fn invocation_bodies_are_read_after_the_credentials_and_up_to_the_limit() {
    let mut app = TestApp::with_config(|config| config.jobs.payload_limit = 4096).await;
    let token = jobs::create(
        &mut app,
        jobs::service("limited", "cat \"$INPUT_FILE_PATH\""),
    )
    .await;
    for path in [
        "/job/limited",
        "/run/limited",
        "/job/missing",
        "/run/missing",
    ] {
        for authorization in ["", "Bearer not-the-token", "Bearer "] {
            let (body, read) = watched_body();
            let answer = app.invoke(path, authorization, body).await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{path} {authorization:?}: {}",
                answer.body
            );
            assert!(
                !read.load(Ordering::SeqCst),
                "{path} {authorization:?}: the body was read before the credentials were checked"
            );
        }
    }
    let bearer = format!("Bearer {token}");
    for path in ["/job/limited", "/run/limited"] {
        let declared = app.invoke(path, &bearer, vec![b'x'; 4097]).await;
        assert_eq!(
            declared.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path}: {}",
            declared.body
        );
        assert!(
            declared.body.contains("OSCAR_MAX_PAYLOAD_BYTES"),
            "{}",
            declared.body
        );
        // Chunked, without a declared length.
        let chunks =
            futures_util::stream::iter((0..5).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 1000])));
        let streamed = app
            .invoke(path, &bearer, axum::body::Body::from_stream(chunks))
            .await;
        assert_eq!(
            streamed.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path}: {}",
            streamed.body
        );
    }
    let fits = app.invoke("/job/limited", &bearer, vec![b'x'; 4096]).await;
    assert_eq!(fits.status, StatusCode::CREATED, "{}", fits.body);
}

/// Issue 20.4: a job printing one long line without a newline is stored cut, with a notice;
/// the server never holds the whole line.
#[tokio::test]
async fn an_endless_line_is_cut_with_a_notice() {
    let mut app = TestApp::new().await;
    let script = "head -c 3000000 /dev/zero | tr '\\0' x\necho\necho after\n";
    jobs::create(&mut app, jobs::service("longline", script)).await;
    jobs::put(&app, "longline", "in/x.txt", b"data").await;
    let finished = jobs::finished(&mut app, "longline", 1).await;
    let job = finished.keys().next().unwrap().clone();
    let log = jobs::log(&mut app, "longline", &job).await;
    assert!(
        log.contains("[line cut: 2934464 more bytes; lines are kept up to 65536 bytes]"),
        "{}",
        &log[log.len().saturating_sub(400)..]
    );
    assert!(
        log.contains("\nafter\n"),
        "the lines after the long one are kept"
    );
    assert!(log.len() < 70_000, "{} bytes stored", log.len());
}

/// Issue 20.4: a `/run` input goes to a file as it arrives, never whole into the server's
/// memory, and nothing of it stays behind once the run is over.
#[tokio::test]
async fn run_inputs_stream_to_the_job_and_leave_nothing_behind() {
    const SIZE: usize = 96 * 1024 * 1024;
    const CHUNK: usize = 1024 * 1024;
    let mut app = TestApp::with_config(|config| config.jobs.payload_limit = 2 * SIZE as u64).await;
    let script = "wc -c < \"$INPUT_FILE_PATH\"\n";
    let token = jobs::create(&mut app, jobs::service("big-run", script)).await;
    let bearer = format!("Bearer {token}");
    // Warm up the run path so its one-time allocations are not counted.
    let warm = app.invoke("/run/big-run", &bearer, "QUFB").await;
    assert_eq!(warm.status, StatusCode::OK, "{}", warm.body);
    let before = common::peak_rss();

    // Base64 of zeros, sent in chunks without a declared length.
    let chunks = futures_util::stream::iter(
        (0..SIZE / CHUNK).map(|_| Ok::<_, std::io::Error>(vec![b'A'; CHUNK])),
    );
    let answer = app
        .invoke(
            "/run/big-run",
            &bearer,
            axum::body::Body::from_stream(chunks),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body.trim(), (SIZE / 4 * 3).to_string());
    let growth = common::peak_rss().saturating_sub(before);
    assert!(
        growth < 32 * 1024 * 1024,
        "peak memory grew by {} MiB for a {} MiB input",
        growth / (1024 * 1024),
        SIZE / (1024 * 1024)
    );
    let spool = &app.app.state.jobs.settings().spool;
    let left: Vec<_> = std::fs::read_dir(spool).unwrap().collect();
    assert!(left.is_empty(), "left in {}: {left:?}", spool.display());
}

/// Issue 20.4, the same class: a server function reads its whole body before it checks the
/// caller, so a signed-out caller of any but the sign-in functions is refused before a byte
/// is read, and the sign-in function's body is small.
#[tokio::test]
async fn server_function_bodies_are_bounded_and_read_only_for_signed_in_callers() {
    let mut app = TestApp::with_config(|config| config.jobs.payload_limit = 4096).await;
    for endpoint in [
        "/api/buckets/preview",
        "/api/jobs/run",
        "/api/no-such-function",
    ] {
        let (body, read) = watched_body();
        let request = http::Request::post(endpoint)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .unwrap();
        let answer = app.send(request).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{endpoint}: {}",
            answer.body
        );
        assert!(!read.load(Ordering::SeqCst), "{endpoint}: body read");
    }
    let huge_login = http::Request::post("/api/auth/login")
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(axum::body::Body::from(vec![b'a'; 65 * 1024]))
        .unwrap();
    let answer = app.send(huge_login).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.body
    );
    // Signed in, up to OSCAR_MAX_PAYLOAD_BYTES.
    app.login().await;
    let payload = "a".repeat(5000);
    let over = app
        .call("jobs/run", &[("service", "x"), ("payload", &payload)])
        .await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", over.body);
    assert!(
        over.body.contains("OSCAR_MAX_PAYLOAD_BYTES"),
        "{}",
        over.body
    );
    let within = app
        .call("jobs/run", &[("service", "x"), ("payload", "a")])
        .await;
    assert_eq!(within.status, StatusCode::NOT_FOUND, "{}", within.body);
}

/// Listing parameters no key could match are a 400 naming the parameter, not a store error
/// (found by the schema-driven API test: a control character in `prefix` was a 500).
#[tokio::test]
async fn listing_parameters_no_key_could_match_are_refused() {
    let mut app = TestApp::new().await;
    let created = app
        .rest(
            "POST",
            "/system/buckets",
            Some(serde_json::json!({"bucket_name": "lists"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let long = "a".repeat(1025);
    for query in [
        "prefix=%0E%C3%90",
        "prefix=a%00b",
        &format!("prefix={long}"),
        "page=%0E%C3%90",
    ] {
        let response = app
            .rest("GET", &format!("/system/buckets/lists?{query}"), None)
            .await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            response.body
        );
        let field = query.split('=').next().unwrap();
        assert!(
            response.body.starts_with(&format!("{field}: ")),
            "{}",
            response.body
        );
    }
    for query in ["page=not-a-token", "limit=-5", "limit=999999"] {
        let response = app
            .rest("GET", &format!("/system/buckets/lists?{query}"), None)
            .await;
        assert!(
            response.status.is_success() || response.status.is_client_error(),
            "{query}: {} {}",
            response.status,
            response.body
        );
    }
}
