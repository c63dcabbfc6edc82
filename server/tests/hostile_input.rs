//! Hostile text (object keys, scripts, log lines) reaches the pages as text, never as markup:
//! server-rendered HTML and the data it carries for hydration escape it.

mod common;

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
