//! `make bench`: Kubernetes mode against the fake API server (no cluster runs here).
//!
//! 1. API round trips per job: every request the platform sends while 200 upload-triggered
//!    jobs run, by shape. The shared watches are counted apart: they do not grow with jobs.
//! 2. Upload to job finished, one job at a time, in Kubernetes mode (fake API server and
//!    kubelet on loopback) and, as the baseline in the same run, with the local executor.
//!    What the fake's kubelet does is the same process start as the local executor, so the
//!    ratio is the cost of the API path (submission, watch, log read).
//!
//! See BENCHMARKS.md for results.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::TestApp;
use common::jobs::{create, put, service};
use domain::jobs;
use domain::kubernetes::{ClusterSettings, Namespacing, SUPERVISOR_IN_IMAGE};
use fake_kube::FakeCluster;
use fake_kube::kubelet::Kubelet;
use server::config::ExecutorConfig;

const JOBS: usize = 200;
const SEQUENTIAL: usize = 30;

#[tokio::main]
async fn main() {
    // Warnings (a retried job, a failed call) show with the results.
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let fake = FakeCluster::new();
    let _kubelet = fake.start_kubelet(Kubelet {
        programs: BTreeMap::from([(
            SUPERVISOR_IN_IMAGE.to_string(),
            vec![env!("CARGO_BIN_EXE_server").into(), "supervise".into()],
        )]),
        unpullable: Vec::new(),
        over_quota: Vec::new(),
        unschedulable: Vec::new(),
    });
    let served = fake.serve().await.unwrap();
    let kubeconfig = served.kubeconfig.clone();
    let mut app = TestApp::with_config(|config| {
        config.jobs.reconcile_every = None;
        config.jobs.max_concurrent_per_service = 16;
        config.executor = ExecutorConfig::Kubernetes {
            cluster: ClusterSettings {
                namespace: "oscar-svc".into(),
                namespacing: Namespacing::Shared,
                platform_image: "oscar:bench".into(),
                job_ttl: Duration::from_secs(600),
                pending_timeout: Duration::from_secs(300),
                exposed_routes: None,
                allow_node_ports: false,
                storage_class: None,
                volume_limits: Default::default(),
                worker_port: 8080,
                rclone_image: None,
            },
            kubeconfig: Some(kubeconfig),
        };
    })
    .await;

    // 1. Round trips per job.
    create(
        &mut app,
        service("bench-k8s", "cat \"$INPUT_FILE_PATH\" > /dev/null\n"),
    )
    .await;
    let before = fake.requests().len();
    for i in 0..JOBS {
        put(&app, "bench-k8s", &format!("in/{i}"), b"x").await;
    }
    all_finished(&app, "bench-k8s", JOBS).await;
    let succeeded = jobs::counts(&app.app.state.db, Some("bench-k8s"), None)
        .await
        .unwrap()
        .into_iter()
        .find(|(state, _)| state.as_str() == "succeeded")
        .map_or(0, |(_, n)| n);
    assert_eq!(succeeded as usize, JOBS, "every job succeeds");
    let requests: Vec<String> = fake.requests().into_iter().skip(before).collect();
    let calls: Vec<&String> = requests
        .iter()
        .filter(|r| !r.contains("watch=true"))
        .collect();
    // Opened once at start (and again only when the server closes them).
    let watches = fake
        .requests()
        .iter()
        .filter(|r| r.contains("watch=true"))
        .count();
    let mut shapes: BTreeMap<String, usize> = BTreeMap::new();
    for call in &calls {
        let path = call.split('?').next().unwrap_or_default();
        // Names differ per job; the shape is the method and the resource path.
        let parts: Vec<&str> = path.split('/').collect();
        let shape = parts
            .iter()
            .enumerate()
            .map(
                |(i, part)| match i.checked_sub(1).map(|before| parts[before]) {
                    Some("pods") => "{pod}",
                    Some("jobs") => "{job}",
                    _ => part,
                },
            )
            .collect::<Vec<_>>()
            .join("/");
        *shapes.entry(shape).or_default() += 1;
    }
    println!("API requests for {JOBS} upload-triggered jobs (fake API server):");
    for (shape, count) in &shapes {
        println!(
            "  {count:>5}  {:.2}/job  {shape}",
            *count as f64 / JOBS as f64
        );
    }
    println!(
        "  total {:.2}/job; watch requests over the whole run (shared, not per job): {watches}",
        calls.len() as f64 / JOBS as f64,
    );

    // 2. Upload to finished, one at a time, Kubernetes mode vs local executor.
    let kube_ms = sequential(&mut app, "bench-k8s-seq").await;
    let mut local = TestApp::with_config(|config| config.jobs.reconcile_every = None).await;
    let local_ms = sequential(&mut local, "bench-local-seq").await;
    println!("upload → job finished, one at a time, {SEQUENTIAL} jobs (median):");
    println!("  Kubernetes mode (fake API server on loopback): {kube_ms:.1} ms");
    println!(
        "  baseline, local executor: {local_ms:.1} ms (ratio {:.2})",
        kube_ms / local_ms
    );
}

/// Waits until `count` jobs of the service are finished, reading the database every 2 ms
/// (finer than the REST history's polling, and not limited to its first page).
async fn all_finished(app: &TestApp, service: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = common::jobs::ended(app, service).await;
        if done >= count {
            return;
        }
        assert!(Instant::now() < deadline, "{done} of {count} jobs finished");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Median milliseconds from an upload to its job being finished, one job at a time.
async fn sequential(app: &mut TestApp, name: &str) -> f64 {
    create(app, service(name, "cat \"$INPUT_FILE_PATH\" > /dev/null\n")).await;
    let mut times = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL {
        let begun = Instant::now();
        put(app, name, &format!("in/{i}"), b"x").await;
        all_finished(app, name, i + 1).await;
        times.push(begun.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
