//! `make bench-served`: what a user of a built server gets, measured through its real HTTP
//! listeners (not in-process), for two server binaries in the same run: typically what
//! `make run` serves and the release build.
//!
//! 1. A 256 MiB upload through the dashboard's upload endpoint (`PUT /api/upload/…`, signed
//!    in), against a direct S3 multipart PUT of the same file into the same server's embedded
//!    store (aws-sdk-s3, the supervisor's uploader): MiB/s of each and their ratio.
//! 2. Upload acknowledged → script start: one-byte objects put into a service's input folder
//!    at a steady rate through S3; the script writes the time it starts.
//! 3. `/run` of a no-op script over HTTP, one client: a job per request (the cold path)
//!    against warm workers (`synchronous.min_scale: 1`).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use aws_sdk_s3::primitives::ByteStream;
use http_body_util::StreamBody;
use hyper::body::{Bytes, Frame};
use serde_json::json;

use crate::platform::Platform;

const UPLOAD_BYTES: usize = 256 * 1024 * 1024;
const ROUNDS: usize = 3;
const EVENTS: usize = 200;
const EVENTS_PER_SECOND: u32 = 20;
const RUNS: usize = 100;

/// One server's figures.
struct Figures {
    direct_mib_s: Vec<f64>,
    dashboard_mib_s: Vec<f64>,
    /// Upload acknowledged → script start, milliseconds, sorted.
    latencies_ms: Vec<f64>,
    /// `/run` round trips, milliseconds, sorted: a job per request, and warm workers.
    cold_run_ms: Vec<f64>,
    warm_run_ms: Vec<f64>,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Measures each server in turn; the first is the baseline the others are compared with.
pub async fn run(servers: &[&Path], dir: &Path) -> anyhow::Result<()> {
    let file = dir.join("upload.bin");
    let body: Bytes = (0..UPLOAD_BYTES).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &body)?;
    let mut all = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let label = server.display().to_string();
        println!("measuring {label} …");
        let figures = measure(server, &dir.join(i.to_string()), &file, &body).await?;
        all.push((label, figures));
    }

    println!();
    println!(
        "| server | direct S3 PUT | dashboard upload | ratio | upload → script start p50 | p99 | max |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (label, f) in &all {
        let (direct, dashboard) = (median(&f.direct_mib_s), median(&f.dashboard_mib_s));
        println!(
            "| {label} | {direct:.0} MiB/s | {dashboard:.0} MiB/s | {:.0} % | {:.1} ms | {:.1} ms | {:.1} ms |",
            100.0 * dashboard / direct,
            quantile(&f.latencies_ms, 0.5),
            quantile(&f.latencies_ms, 0.99),
            quantile(&f.latencies_ms, 1.0),
        );
    }
    let (first, a) = &all[0];
    for (label, b) in &all[1..] {
        println!();
        println!(
            "{label} vs {first}: dashboard upload {:.2}x, direct PUT {:.2}x, script start p50 {:.2}x",
            median(&b.dashboard_mib_s) / median(&a.dashboard_mib_s),
            median(&b.direct_mib_s) / median(&a.direct_mib_s),
            quantile(&b.latencies_ms, 0.5) / quantile(&a.latencies_ms, 0.5),
        );
    }
    println!(
        "(medians of {ROUNDS} uploads of {} MiB each way; {EVENTS} events at {EVENTS_PER_SECOND}/s)",
        UPLOAD_BYTES >> 20
    );
    println!();
    println!("| server | /run cold p50 | p99 | /run warm p50 | p99 | warm vs cold p50 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, f) in &all {
        let (cold, warm) = (quantile(&f.cold_run_ms, 0.5), quantile(&f.warm_run_ms, 0.5));
        println!(
            "| {label} | {cold:.1} ms | {:.1} ms | {warm:.1} ms | {:.1} ms | {:.2}x |",
            quantile(&f.cold_run_ms, 0.99),
            quantile(&f.warm_run_ms, 0.99),
            warm / cold,
        );
    }
    println!(
        "({RUNS} sequential /run of a no-op script over HTTP each, after at least 20 and 5 s to warm up)"
    );
    Ok(())
}

async fn measure(server: &Path, data: &Path, file: &Path, body: &Bytes) -> anyhow::Result<Figures> {
    let mut platform = Platform::new(server, data, &[]);
    platform.start().await?;
    platform
        .store
        .create_bucket()
        .bucket("served")
        .send()
        .await
        .context("creating the upload bucket")?;
    let cookie = platform.sign_in().await?;
    let mib = UPLOAD_BYTES as f64 / 1048576.0;
    let mut figures = Figures {
        direct_mib_s: Vec::new(),
        dashboard_mib_s: Vec::new(),
        latencies_ms: Vec::new(),
        cold_run_ms: Vec::new(),
        warm_run_ms: Vec::new(),
    };
    for round in 0..ROUNDS {
        let started = Instant::now();
        supervisor::storage::upload(&platform.store, "served", &format!("direct-{round}"), file)
            .await
            .map_err(anyhow::Error::msg)?;
        figures
            .direct_mib_s
            .push(mib / started.elapsed().as_secs_f64());

        let request = platform
            .request("PUT", &format!("/api/upload/served/dashboard-{round}"))
            .header(http::header::COOKIE, &cookie)
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(in_chunks(body.clone()))?;
        let started = Instant::now();
        let (status, _, answer) = platform.send(request).await?;
        if status != 200 {
            bail!(
                "the dashboard upload answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        figures
            .dashboard_mib_s
            .push(mib / started.elapsed().as_secs_f64());
    }

    let stamps = platform.shared.join("stamps");
    std::fs::create_dir_all(&stamps)?;
    platform
        .create_service(&json!({
            "name": "served-latency",
            "image": "alpine",
            // The file's modification time is the script's start: any image can do this.
            "script": ": > \"$STAMPS/$(basename \"$INPUT_FILE_PATH\")\"\n",
            "environment": {"variables": {"STAMPS": stamps}},
            "input": [{"storage_provider": "minio.default", "path": "served-latency/in"}],
        }))
        .await?;
    let every = Duration::from_secs(1) / EVENTS_PER_SECOND;
    let start = Instant::now();
    let mut acknowledged = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        tokio::time::sleep_until((start + every * i as u32).into()).await;
        platform
            .store
            .put_object()
            .bucket("served-latency")
            .key(format!("in/{i}"))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .with_context(|| format!("uploading in/{i}"))?;
        acknowledged.push(now_ns());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for (i, acknowledged) in acknowledged.iter().enumerate() {
        let started: u128 = loop {
            let stamp = std::fs::metadata(stamps.join(i.to_string())).and_then(|m| m.modified());
            if let Ok(modified) = stamp {
                break modified
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
            }
            if Instant::now() > deadline {
                bail!("the job of in/{i} did not start within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let ms = started.saturating_sub(*acknowledged) as f64 / 1e6;
        figures.latencies_ms.push(ms);
    }
    figures.latencies_ms.sort_by(f64::total_cmp);
    figures.cold_run_ms = run_times(&platform, "served-cold", json!({})).await?;
    figures.warm_run_ms = run_times(
        &platform,
        "served-warm",
        json!({"min_scale": 1, "max_scale": 1}),
    )
    .await?;
    platform.stop().await;
    Ok(figures)
}

/// `RUNS` sequential `/run` round trips of a new no-op service, after warming up, sorted.
async fn run_times(
    platform: &Platform,
    name: &str,
    sync: serde_json::Value,
) -> anyhow::Result<Vec<f64>> {
    platform
        .create_service(
            &json!({"name": name, "image": "alpine", "script": "echo ok\n", "synchronous": sync}),
        )
        .await?;
    let (_, read) = platform
        .rest("GET", &format!("/system/services/{name}"), None)
        .await?;
    let token: serde_json::Value = serde_json::from_str(&read)?;
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap_or_default());
    let mut times = Vec::new();
    // The first runs pull the image; the workers start at the server's next pass over the
    // services (every 2 s): measured only after both.
    let warm_up = Instant::now() + Duration::from_secs(5);
    let mut warming = 0;
    while warming < 20 || Instant::now() < warm_up {
        let request = platform
            .request("POST", &format!("/run/{name}"))
            .header(http::header::AUTHORIZATION, &bearer)
            .body(http_body_util::Full::new(Bytes::from_static(b"{}")))?;
        platform.send(request).await?;
        warming += 1;
    }
    for _ in 0..RUNS {
        let request = platform
            .request("POST", &format!("/run/{name}"))
            .header(http::header::AUTHORIZATION, &bearer)
            .body(http_body_util::Full::new(Bytes::from_static(b"{}")))?;
        let started = Instant::now();
        let (status, _, body) = platform.send(request).await?;
        if status != 200 {
            bail!(
                "/run/{name} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The body in 1 MiB frames, as a browser streams a file.
fn in_chunks(
    body: Bytes,
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, std::convert::Infallible>>> {
    const CHUNK: usize = 1024 * 1024;
    StreamBody::new(futures_util::stream::iter(
        (0..body.len())
            .step_by(CHUNK)
            .map(move |at| Ok(Frame::data(body.slice(at..(at + CHUNK).min(body.len()))))),
    ))
}
