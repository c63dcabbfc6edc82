//! `make bench`: a 1 GiB upload through the dashboard's upload path (`PUT /api/upload/…`, the
//! real router in-process, streamed to the embedded S3 in 16 MiB parts) against a direct S3
//! multipart PUT of the same file with aws-sdk-s3 in the same run, and the peak memory growth
//! of the process during the dashboard upload. See BENCHMARKS.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use axum::body::{Body, Bytes};
use common::TestApp;
use http::Request;
use tokio::io::AsyncReadExt;

const SIZE: usize = 1024 * 1024 * 1024;
const CHUNK: usize = 1024 * 1024;

#[tokio::main]
async fn main() {
    let mut app = TestApp::new().await;
    app.login().await;
    let s3 = app.app.state.s3.clone();
    s3.client
        .create_bucket()
        .bucket("bench")
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one-gib.bin");
    {
        let chunk: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();
        let mut out = std::fs::File::create(&file).unwrap();
        for _ in 0..SIZE / CHUNK {
            std::io::Write::write_all(&mut out, &chunk).unwrap();
        }
    }
    let mib = SIZE as f64 / (1024.0 * 1024.0);

    let started = Instant::now();
    supervisor::storage::upload(&s3.client, "bench", "direct.bin", &file)
        .await
        .unwrap();
    let direct = mib / started.elapsed().as_secs_f64();

    let before = common::peak_rss();
    let reader = tokio::fs::File::open(&file).await.unwrap();
    let chunks = futures_util::stream::unfold(reader, |mut reader| async move {
        let mut buffer = vec![0u8; CHUNK];
        match reader.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buffer)), reader))
            }
            Err(e) => Some((Err(e), reader)),
        }
    });
    let request = Request::put("/api/upload/bench/dashboard.bin")
        .body(Body::from_stream(chunks))
        .unwrap();
    let started = Instant::now();
    let response = app.send(request).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let dashboard = mib / started.elapsed().as_secs_f64();
    let growth = common::peak_rss().saturating_sub(before) as f64 / (1024.0 * 1024.0);

    println!("1 GiB upload into the embedded S3 (release build)");
    println!("  direct S3 multipart PUT (aws-sdk-s3, 16 MiB parts): {direct:.0} MiB/s (baseline)");
    println!(
        "  dashboard upload path (PUT /api/upload, 16 MiB parts): {dashboard:.0} MiB/s ({:.0} % of direct)",
        dashboard / direct * 100.0
    );
    println!("  peak RSS growth during the dashboard upload: {growth:.1} MiB");
}
