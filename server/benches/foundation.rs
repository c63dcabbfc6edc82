//! `make bench`: request latency through the real router (in-process, as the tests drive it)
//! and object-store throughput through aws-sdk-s3 against the embedded S3 over loopback.
//! Each figure comes with a baseline measured in the same run; see BENCHMARKS.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::TestApp;

const REQUESTS: usize = 2_000;
const OBJECTS: usize = 20;
const OBJECT_SIZE: usize = 8 * 1024 * 1024;

#[tokio::main]
async fn main() {
    let mut app = TestApp::new().await;
    app.login().await;

    println!("request latency, {REQUESTS} sequential requests each (in-process router, SQLite)");
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>10}",
        "request", "p50 µs", "p99 µs", "max µs", "vs health"
    );
    let baseline = measure(
        &mut app,
        "GET /health (baseline)",
        |app| Box::pin(app.get("/health")),
        None,
    )
    .await;
    measure(
        &mut app,
        "GET /services (SSR page)",
        |app| Box::pin(app.get("/services")),
        Some(baseline),
    )
    .await;
    measure(
        &mut app,
        "GET /info (SSR + server data)",
        |app| Box::pin(app.get("/info")),
        Some(baseline),
    )
    .await;
    measure(
        &mut app,
        "POST /api/system/info",
        |app| Box::pin(app.call("system/info", &[])),
        Some(baseline),
    )
    .await;
    measure(
        &mut app,
        "POST /api/buckets/list (S3 call)",
        |app| Box::pin(app.call("buckets/list", &[])),
        Some(baseline),
    )
    .await;

    let s3 = app.app.state.s3.clone();
    s3.client
        .create_bucket()
        .bucket("bench")
        .send()
        .await
        .unwrap();
    let payload = vec![7u8; OBJECT_SIZE];
    let started = Instant::now();
    for i in 0..OBJECTS {
        s3.client
            .put_object()
            .bucket("bench")
            .key(format!("object-{i}"))
            .body(ByteStream::from(payload.clone()))
            .send()
            .await
            .unwrap();
    }
    let put = started.elapsed();
    let started = Instant::now();
    for i in 0..OBJECTS {
        let out = s3
            .client
            .get_object()
            .bucket("bench")
            .key(format!("object-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.body.collect().await.unwrap().into_bytes().len(),
            OBJECT_SIZE
        );
    }
    let get = started.elapsed();
    let mib = (OBJECTS * OBJECT_SIZE) as f64 / (1024.0 * 1024.0);
    println!();
    println!(
        "embedded S3 over loopback, {OBJECTS} objects of {} MiB, sequential",
        OBJECT_SIZE / (1024 * 1024)
    );
    println!("PUT {:>8.1} MiB/s", mib / put.as_secs_f64());
    println!("GET {:>8.1} MiB/s", mib / get.as_secs_f64());
}

type Call<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = common::TestResponse> + 'a>>;

/// Runs `call` REQUESTS times after a warm-up and prints percentiles; returns the median.
async fn measure(
    app: &mut TestApp,
    name: &str,
    call: impl for<'a> Fn(&'a mut TestApp) -> Call<'a>,
    baseline: Option<Duration>,
) -> Duration {
    for _ in 0..50 {
        assert!(call(app).await.status.is_success(), "{name} failed");
    }
    let mut samples = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        let response = call(app).await;
        samples.push(started.elapsed());
        assert!(response.status.is_success(), "{name}: {}", response.status);
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let p50 = pct(0.50);
    let ratio = baseline
        .map(|b| format!("{:.1}x", p50.as_secs_f64() / b.as_secs_f64()))
        .unwrap_or_else(|| "1.0x".into());
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>10}",
        name,
        p50.as_micros(),
        pct(0.99).as_micros(),
        samples.last().unwrap().as_micros(),
        ratio
    );
    p50
}
