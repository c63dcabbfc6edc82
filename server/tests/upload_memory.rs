//! A 1 GiB upload through the dashboard's upload route, measured by the process's peak memory:
//! alone in its test binary, since tests running beside it in one process would count too.

mod common;

use std::time::Instant;

use axum::body::Body;
use common::TestApp;
use http::{Request, StatusCode};

#[tokio::test]
async fn a_1_gib_upload_streams_with_bounded_memory() {
    const SIZE: u64 = 1024 * 1024 * 1024;
    const CHUNK: usize = 1024 * 1024;
    let mut app = TestApp::new().await;
    app.login().await;
    app.app
        .state
        .s3
        .client
        .create_bucket()
        .bucket("large")
        .send()
        .await
        .unwrap();
    // Warm up the upload path so its one-time allocations are not counted.
    assert_eq!(
        app.upload("large/warm-up.bin", vec![1; 9 * 1024 * 1024])
            .await
            .status,
        StatusCode::OK
    );
    let before = common::peak_rss();

    let chunks =
        futures_util::stream::iter((0..SIZE / CHUNK as u64).map(|i| {
            Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![(i % 251) as u8; CHUNK]))
        }));
    let request = Request::put("/api/upload/large/one-gib.bin")
        .body(Body::from_stream(chunks))
        .unwrap();
    let started = Instant::now();
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.json()["size"], SIZE);
    let growth = common::peak_rss().saturating_sub(before);
    eprintln!(
        "1 GiB in {:?}, peak RSS growth {} MiB",
        started.elapsed(),
        growth / (1024 * 1024)
    );
    assert!(
        growth < 128 * 1024 * 1024,
        "peak memory grew by {} MiB",
        growth / (1024 * 1024)
    );

    let head = app
        .app
        .state
        .s3
        .client
        .head_object()
        .bucket("large")
        .key("one-gib.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(SIZE as i64));
}
