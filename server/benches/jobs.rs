//! `make bench`: event-driven execution in embedded mode (release build).
//!
//! 1. Latency from an upload's acknowledgement to the script's first line, at 50 uploads/s
//!    through aws-sdk-s3 into the embedded S3 (p50, p99). Baseline: one whole no-op
//!    supervisor run (spawn to exit) started directly, with no queue, database or download.
//! 2. The highest sustained rate of no-op jobs (payload events, `true` as the script) with
//!    a backlog, on this machine. Baseline: the same supervisor runs, one after another, with
//!    no queue, database or log capture.
//!
//! 3. The sandbox's cost: the same direct supervisor run inside bubblewrap (the host
//!    executor's `jobs::sandbox`) against the plain run.
//!
//! See BENCHMARKS.md for results.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::ByteStream;
use common::TestApp;
use domain::jobs::{self, NewJob, Trigger};
use serde_json::json;

const RATE: u64 = 50;
const UPLOADS: usize = 500;
const NOOP_JOBS: usize = 1_000;

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::main]
async fn main() {
    let stamps = tempfile::tempdir().unwrap();
    // Jobs write their start times where the bench reads them (a writable sandbox mount).
    let mount = format!("{}:rw", stamps.path().display());
    let mut app = TestApp::with_config(|c| {
        c.jobs.max_concurrent_per_service = 64;
        c.jobs.reconcile_every = None;
        c.job_mounts = vec![domain::jobs::sandbox::JobMount::parse(&mount).unwrap()];
    })
    .await;

    // 1. Upload acknowledged → script start.
    let service = json!({
        "name": "bench-latency",
        "image": "alpine",
        "script": "date +%s%N > \"$STAMPS/$(basename \"$INPUT_FILE_PATH\")\"\n",
        "environment": {"variables": {"STAMPS": stamps.path()}},
        "input": [{"storage_provider": "minio.default", "path": "bench-latency/in"}],
    });
    assert_eq!(
        app.rest("POST", "/system/services", Some(service))
            .await
            .status,
        201
    );
    let s3 = app.app.state.s3.clone();
    let mut acked = Vec::with_capacity(UPLOADS);
    let every = Duration::from_nanos(1_000_000_000 / RATE);
    let start = Instant::now();
    for i in 0..UPLOADS {
        tokio::time::sleep_until((start + every * i as u32).into()).await;
        s3.client
            .put_object()
            .bucket("bench-latency")
            .key(format!("in/{i}"))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
        acked.push(now_ns());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut latencies = Vec::with_capacity(UPLOADS);
    for (i, ack) in acked.iter().enumerate() {
        let path = stamps.path().join(i.to_string());
        let started: u128 = loop {
            if let Some(ns) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break ns;
            }
            assert!(Instant::now() < deadline, "job {i} never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        latencies.push(started.saturating_sub(*ack) as f64 / 1e6);
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];

    let direct = direct_supervisor_ms(&app, stamps.path(), 50, false).await;
    println!(
        "upload acknowledged → script start, {UPLOADS} uploads at {RATE}/s (embedded S3, SQLite)"
    );
    println!(
        "  p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
    println!(
        "  baseline: one no-op supervisor run started directly, spawn to exit, p50 {direct:.1} ms (ratio {:.1})",
        pick(0.5) / direct
    );

    // 2. Sustained no-op jobs per second, from a backlog.
    let service = json!({"name": "bench-noop", "image": "alpine", "script": "true\n"});
    assert_eq!(
        app.rest("POST", "/system/services", Some(service))
            .await
            .status,
        201
    );
    let owner = domain::access::ADMIN_OWNER.to_string();
    let started = Instant::now();
    for i in 0..NOOP_JOBS {
        let new = NewJob {
            service: "bench-noop".into(),
            owner: owner.clone(),
            trigger: Trigger::Api,
            event: format!("{{\"i\": {i}}}"),
            input: None,
            object: None,
        };
        jobs::enqueue(&app.app.state.db, &app.app.state.jobs, new)
            .await
            .unwrap();
    }
    let queued = started.elapsed();
    loop {
        let counts = jobs::counts(&app.app.state.db, "bench-noop", None)
            .await
            .unwrap();
        let done: i64 = counts
            .iter()
            .filter(|(s, _)| s.is_final())
            .map(|(_, n)| n)
            .sum();
        if done as usize >= NOOP_JOBS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = started.elapsed();
    let rate = NOOP_JOBS as f64 / total.as_secs_f64();
    let baseline = 1000.0 / direct_supervisor_ms(&app, stamps.path(), 100, false).await;
    println!(
        "no-op jobs: {NOOP_JOBS} queued in {:.2} s, all finished after {:.2} s: {rate:.0} jobs/s",
        queued.as_secs_f64(),
        total.as_secs_f64()
    );
    println!(
        "  baseline: the supervisor run back to back without the platform: {baseline:.0} runs/s (ratio {:.2})",
        rate / baseline
    );

    // 3. The sandbox's cost per job.
    println!("jobs run {}", app.app.state.info.executor);
    let plain = direct_supervisor_ms(&app, stamps.path(), 200, false).await;
    let sandboxed = direct_supervisor_ms(&app, stamps.path(), 200, true).await;
    println!(
        "sandbox: a no-op supervisor run, spawn to exit, p50 {sandboxed:.1} ms in bubblewrap vs {plain:.1} ms plain: +{:.1} ms (ratio {:.2})",
        sandboxed - plain,
        sandboxed / plain
    );
}

/// Median milliseconds from spawning the supervisor (on a payload event, script `true`) to
/// its exit, without queue, database or log capture; in the jobs' sandbox if asked.
async fn direct_supervisor_ms(
    app: &TestApp,
    dir: &std::path::Path,
    runs: usize,
    sandboxed: bool,
) -> f64 {
    let config = dir.join("direct");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("function_config.yaml"), "name: direct\n").unwrap();
    std::fs::write(config.join("script.sh"), "true\n").unwrap();
    let mut command = app.config.supervisor.clone().unwrap();
    if sandboxed {
        let sandbox =
            domain::jobs::sandbox::Sandbox::probe(dir, Vec::new()).expect("bubblewrap works");
        let mut wrapped = vec![sandbox.program().to_string_lossy().into_owned()];
        let program = std::path::Path::new(&command[0]);
        wrapped.extend(
            sandbox
                .arguments(
                    domain::jobs::sandbox::Programs::Host,
                    dir,
                    program,
                    &command[1..],
                )
                .iter()
                .map(|a| a.to_string_lossy().into_owned()),
        );
        command = wrapped;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let begun = Instant::now();
        let status = tokio::process::Command::new(&command[0])
            .args(&command[1..])
            .env("EVENT", "{}")
            .env("OSCAR_CONFIG_DIR", &config)
            .env("OSCAR_RESULT_FILE", config.join("result.json"))
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(status.success());
        times.push(begun.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
